package specs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// The canonical JSON form is the model's JSON with every object's keys in
// byte order, no insignificant whitespace and no HTML escaping. Parse fills
// in defaults and sorts name-keyed lists, so equal specs encode to equal
// bytes; job meta and the catalog store and compare this form.

// Encode returns the canonical JSON of fn.
func Encode(fn *Function) ([]byte, error) {
	if fn == nil {
		return nil, errors.New("encoding function spec: nil function")
	}
	return canonical(fn)
}

// EncodeFile returns the canonical JSON of f.
func EncodeFile(f *File) ([]byte, error) {
	if f == nil {
		return nil, errors.New("encoding spec file: nil file")
	}
	return canonical(f)
}

func canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	// Round trip through generic values: encoding/json writes map keys in
	// order, and UseNumber keeps numbers exactly as they were written.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode reads a function from its canonical JSON (or any JSON of the
// model: missing defaults are filled in, unknown keys are ignored so older
// readers accept newer writers) and validates it on its own. References to
// other functions and layers are not checked; see Validate for that.
func Decode(data []byte) (*Function, error) {
	var fn Function
	if err := json.Unmarshal(data, &fn); err != nil {
		return nil, fmt.Errorf("decoding function spec: %w", err)
	}
	if fn.Name == "" {
		return nil, errors.New("decoding function spec: no name")
	}
	if err := noNulls(&fn); err != nil {
		return nil, fmt.Errorf("decoding function spec %q: %w", fn.Name, err)
	}
	applyDefaults(&fn)
	sortModel(&File{Functions: []*Function{&fn}})
	v := &validator{}
	v.function(&fn)
	if err := diagsError(v.diags); err != nil {
		return nil, fmt.Errorf("decoding function spec %q: %w", fn.Name, err)
	}
	return &fn, nil
}

// DecodeFile reads a File from JSON and validates it, references included.
func DecodeFile(data []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decoding spec file: %w", err)
	}
	for _, fn := range f.Functions {
		if fn == nil {
			return nil, errors.New("decoding spec file: null function")
		}
		if err := noNulls(fn); err != nil {
			return nil, fmt.Errorf("decoding spec file: function %q: %w", fn.Name, err)
		}
		applyDefaults(fn)
	}
	for _, l := range f.Layers {
		if l == nil {
			return nil, errors.New("decoding spec file: null layer")
		}
	}
	sortModel(&f)
	if err := diagsError(Validate(&f)); err != nil {
		return nil, fmt.Errorf("decoding spec file: %w", err)
	}
	return &f, nil
}

// diagsError joins the error diagnostics into one error, or returns nil.
func diagsError(diags hcl.Diagnostics) error {
	var msgs []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			msgs = append(msgs, d.Summary)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// noNulls rejects null elements in the model's lists, which JSON allows and
// the model does not.
func noNulls(fn *Function) error {
	for _, s := range fn.Secrets {
		if s == nil {
			return errors.New("null in secrets")
		}
	}
	for _, es := range fn.EventSources {
		if es == nil {
			return errors.New("null in event_sources")
		}
	}
	for _, a := range fn.Aliases {
		if a == nil {
			return errors.New("null in aliases")
		}
	}
	if pc := fn.Provisioned; pc != nil {
		for _, s := range pc.Schedules {
			if s == nil {
				return errors.New("null in provisioned_concurrency.schedules")
			}
		}
	}
	if p := fn.Placement; p != nil {
		for _, c := range p.Constraints {
			if c == nil {
				return errors.New("null in placement.constraints")
			}
		}
	}
	return nil
}
