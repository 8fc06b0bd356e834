// Package sandbox isolates one execution environment's process tree on
// Linux: its own mount and PID namespaces, a minimal read-only root built
// from bind mounts (the function code at /var/task, layers at /opt, a
// size-limited tmpfs at /tmp, a fresh /proc, a handful of /dev nodes), a
// dedicated unprivileged uid/gid, no_new_privs, no capabilities (bounding
// set included) and a seccomp filter in the style of Docker's default
// profile. For an image function the root is instead the image's unpacked
// layers stacked read-only with overlayfs (Plan.RootLayers), with the same
// /tmp, /proc and /dev.
//
// Go cannot run code between fork and exec, so an environment starts
// through a small init: the host process re-executes its own binary with
// argv[0] set to InitName, new namespaces (SysProcAttr.Cloneflags) and a
// JSON Plan on fd 3. The package's init function recognises that argv[0]
// and runs the init before main or TestMain, so every binary that links this
// package (nimbus, nimbus-driver, test binaries) can host environments. The
// init, PID 1 of the new PID namespace, builds the root, pivots into it,
// drops privileges on its own OS thread, starts the bootstrap as its child,
// reaps orphans, forwards SIGTERM, writes the bootstrap's wait status to
// fd 4 and exits — which makes the kernel end every process left in the
// namespace.
//
// The same init enters a running environment for `nomad alloc exec`
// (Enter): it joins the namespaces of the environment's init with setns,
// takes the function's identity and restrictions and runs the command.
//
// A second seccomp filter kills any system call made through a foreign
// ABI (i386's int 0x80 on x86_64), which the first cannot see by number.
// With network "none" an environment also joins a network namespace of its
// own (NewNetNS: only loopback, up), in which the host opened the
// environment's Runtime API listener beforehand; the init joins it on the
// thread that forks the bootstrap.
//
// It may import the standard library and github.com/elastic/go-seccomp-bpf.
package sandbox
