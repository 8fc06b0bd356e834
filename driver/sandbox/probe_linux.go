//go:build linux

package sandbox

import (
	"os"

	seccomp "github.com/elastic/go-seccomp-bpf"
)

// Missing lists the pieces of isolation this host (and this process's
// privileges) cannot provide; empty means full isolation.
func Missing() []string {
	var m []string
	if os.Geteuid() != 0 {
		m = append(m, "root (mount and pid namespaces, a dedicated uid, a private /tmp)")
	}
	for _, ns := range []string{"mnt", "pid", "net"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			m = append(m, ns+" namespace")
		}
	}
	if !seccomp.Supported() {
		m = append(m, "seccomp")
	}
	return m
}
