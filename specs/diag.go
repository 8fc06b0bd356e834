package specs

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostics renders diags for people, one block per diagnostic:
//
//	fn.hcl:7:15: error: memory_mb must be between 128 and 10240; got 64
//	    7 |   memory_mb = 64
//	      |               ^^
//
// The detail (if any) follows the first line, indented. Sources come from
// files (keyed by file name) or, for names not in it, from disk; without a
// source the snippet is left out.
func FormatDiagnostics(diags hcl.Diagnostics, files map[string]*hcl.File) string {
	var b strings.Builder
	cache := map[string][]byte{}
	source := func(name string) []byte {
		if f, ok := files[name]; ok && f != nil {
			return f.Bytes
		}
		if src, ok := cache[name]; ok {
			return src
		}
		src, err := readLimited(name)
		if err != nil {
			src = nil
		}
		cache[name] = src
		return src
	}
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(&b, "%s: %s\n", sev, d.Summary)
		if d.Detail != "" {
			for _, line := range strings.Split(d.Detail, "\n") {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
		if d.Subject != nil {
			writeSnippet(&b, source(d.Subject.Filename), *d.Subject)
		}
	}
	return b.String()
}

// writeSnippet prints the first line of rng with carets under the range.
func writeSnippet(b *strings.Builder, src []byte, rng hcl.Range) {
	start := rng.Start.Byte
	if src == nil || start < 0 || start > len(src) {
		return
	}
	lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
		lineEnd = start + i
	}
	line := strings.TrimRight(string(src[lineStart:lineEnd]), "\r")
	end := min(max(rng.End.Byte, start), lineStart+len(line))
	if !utf8.ValidString(line) {
		return
	}
	gutter := fmt.Sprintf("%5d | ", rng.Start.Line)
	fmt.Fprintf(b, "%s%s\n", gutter, line)

	// Keep tabs so the carets line up under tab-indented source.
	var pad strings.Builder
	for _, r := range string(src[lineStart:min(start, lineStart+len(line))]) {
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	carets := utf8.RuneCount(src[min(start, end):end])
	if carets < 1 {
		carets = 1
	}
	fmt.Fprintf(b, "%s| %s%s\n", strings.Repeat(" ", len(gutter)-2), pad.String(), strings.Repeat("^", carets))
}
