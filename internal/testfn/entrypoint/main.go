// Command entrypoint does what the AWS base images' /lambda-entrypoint.sh
// does, for images without a shell: it takes the handler (the image's CMD)
// as its one argument, exports it as _HANDLER and execs the runtime at
// /var/runtime/bootstrap.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "entrypoint requires the handler name to be the first argument")
		os.Exit(142)
	}
	if err := os.Setenv("_HANDLER", os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	const bootstrap = "/var/runtime/bootstrap"
	if err := syscall.Exec(bootstrap, []string{bootstrap}, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "exec %s: %v\n", bootstrap, err)
		os.Exit(1)
	}
}
