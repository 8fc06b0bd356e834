package instance

import (
	"fmt"

	"github.com/nimbus-fn/nimbus/runtimes"
)

// managedEntrypoint returns the argv of a managed runtime (python, node)
// from the installed bootstraps.
func managedEntrypoint(c *Config, runtimeDir string) ([]string, error) {
	if !runtimes.Managed(c.Runtime) {
		return nil, fmt.Errorf("%w: unknown runtime %q", ErrInvalidEntrypoint, c.Runtime)
	}
	argv, err := runtimes.Command(runtimeDir, c.Runtime)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntrypoint, err)
	}
	return argv, nil
}

// installRuntimes writes the embedded bootstraps when the instance owns its
// runtimes directory (Config.RuntimesDir empty) and the runtime is managed.
func installRuntimes(c *Config, runtimeDir string) error {
	if c.RuntimesDir != "" || !runtimes.Managed(c.Runtime) {
		return nil
	}
	if err := runtimes.Install(runtimeDir); err != nil {
		return fmt.Errorf("installing managed runtimes in %s: %w", runtimeDir, err)
	}
	return nil
}
