package instance

import "fmt"

// managedEntrypoint returns the argv of a managed runtime (python, node).
func managedEntrypoint(c *Config) ([]string, error) {
	return nil, fmt.Errorf("%w: runtime %q is not a provided runtime and this build has no managed runtimes", ErrInvalidEntrypoint, c.Runtime)
}
