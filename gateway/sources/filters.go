package sources

import "errors"

// CompileFilters compiles a mapping's filter patterns into one matcher
// (nil when there are none: every record matches).
func CompileFilters(patterns []string) (func(map[string]any) bool, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	return nil, errors.New("filters: pending specs/filter")
}
