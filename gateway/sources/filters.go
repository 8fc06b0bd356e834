package sources

import (
	"github.com/nimbus-fn/nimbus/specs/filter"
)

// CompileFilters compiles a mapping's filter patterns into one matcher
// (nil when there are none: every record matches).
func CompileFilters(patterns []string) (func(map[string]any) bool, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	set, err := filter.CompileSet(patterns)
	if err != nil {
		return nil, err
	}
	return set.Match, nil
}
