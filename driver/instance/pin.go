package instance

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// pin takes a shared flock on each directory (see Config.PinDirs). The
// files are close-on-exec, so no environment inherits them.
func (in *Instance) pin(dirs []string) error {
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			in.unpin()
			return fmt.Errorf("pinning %s: %w", d, err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if err != nil {
			_ = f.Close()
			in.unpin()
			return fmt.Errorf("pinning %s: %w", d, err)
		}
		in.pins = append(in.pins, f)
	}
	return nil
}

func (in *Instance) unpin() {
	for _, f := range in.pins {
		_ = f.Close()
	}
	in.pins = nil
}
