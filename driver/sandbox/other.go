//go:build !linux

package sandbox

import (
	"net"
	"os"
)

// Missing lists what this host cannot isolate: everything, off Linux.
func Missing() []string { return []string{"linux (namespaces, seccomp)"} }

// NetNS is a network namespace: Linux only.
type NetNS struct{}

// NewNetNS fails off Linux.
func NewNetNS(string) (*NetNS, net.Listener, error) { return nil, nil, ErrUnsupported }

func (n *NetNS) dup() (*os.File, error) { return nil, ErrUnsupported }

// Close does nothing.
func (n *NetNS) Close() error { return nil }
