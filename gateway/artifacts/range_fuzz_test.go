package artifacts

import "testing"

// Whatever the header, a satisfiable answer stays inside the body and a
// whole-body answer is not partial.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=7-", "bytes=1-2,3-4", "bytes=9999999999999999999-", "bytes=--1", ""} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 { // math.MinInt64
			return
		}
		start, length, partial, ok := parseRange(h, size)
		if !ok {
			return
		}
		if start < 0 || length < 0 || start+length > size {
			t.Fatalf("%q/%d: start %d length %d outside the body", h, size, start, length)
		}
		if !partial && (start != 0 || length != size) {
			t.Fatalf("%q/%d: whole answer %d+%d", h, size, start, length)
		}
		if partial && length == 0 {
			t.Fatalf("%q/%d: empty partial answer", h, size)
		}
	})
}
