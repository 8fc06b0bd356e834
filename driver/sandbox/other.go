//go:build !linux

package sandbox

// Missing lists what this host cannot isolate: everything, off Linux.
func Missing() []string { return []string{"linux (namespaces, seccomp)"} }
