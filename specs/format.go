package specs

import (
	"bytes"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical layout: hclwrite.Format's spacing and
// alignment, no blank lines at the start, at most one blank line in a row
// (outside strings and heredocs) and exactly one newline at the end. It
// never fails; input that does not parse is formatted token by token as
// far as hclwrite can, so callers should parse first to report errors.
func Format(src []byte) []byte {
	out := hclwrite.Format(src)
	out = squeezeBlankLines(out)
	out = hclwrite.Format(out)
	out = bytes.TrimLeft(out, "\n")
	out = bytes.TrimRight(out, " \t\r\n")
	if len(out) == 0 {
		return []byte{}
	}
	return append(out, '\n')
}

// squeezeBlankLines removes newline tokens that would make a second blank
// line in a row. Heredoc and string contents are other token types, so
// they are untouched.
func squeezeBlankLines(src []byte) []byte {
	tokens, _ := hclsyntax.LexConfig(src, "", hcl.InitialPos)
	var out []byte
	last := 0
	newlines := 0
	for _, t := range tokens {
		isNewline := t.Type == hclsyntax.TokenNewline
		endsLine := isNewline || (t.Type == hclsyntax.TokenComment && bytes.HasSuffix(t.Bytes, []byte("\n")))
		if isNewline && newlines >= 2 {
			out = append(out, src[last:t.Range.Start.Byte]...)
			last = t.Range.End.Byte
			continue
		}
		switch {
		case isNewline:
			newlines++
		case endsLine:
			// A line comment ends a line that is not blank.
			newlines = 1
		default:
			newlines = 0
		}
	}
	return append(out, src[last:]...)
}

// FormatFile checks that src is HCL (so broken files are reported, not
// reshuffled) and returns it formatted by Format.
func FormatFile(filename string, src []byte) ([]byte, hcl.Diagnostics) {
	if _, diags := parseSource(filename, src); diags.HasErrors() {
		return nil, diags
	}
	return Format(src), nil
}
