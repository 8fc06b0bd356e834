//go:build linux

package sandbox

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// NetNS is a network namespace of its own for one environment (a function
// with network "none"): only loopback, up. The host keeps it open and every
// init or zygote of the environment joins it (Plan.NetNS).
type NetNS struct {
	f *os.File
}

// NewNetNS creates a network namespace, brings its loopback up and opens a
// TCP listener on addr inside it (the environment's Runtime API: served by
// the host process, reached by the function at that address on its own
// loopback). The creating OS thread is discarded afterwards: it never runs
// other goroutines in the namespace.
func NewNetNS(addr string) (*NetNS, net.Listener, error) {
	type result struct {
		ns  *NetNS
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		ns, ln, err := newNetNSOnThread(addr)
		ch <- result{ns, ln, err}
	}()
	r := <-ch
	return r.ns, r.ln, r.err
}

func newNetNSOnThread(addr string) (*NetNS, net.Listener, error) {
	if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
		return nil, nil, fmt.Errorf("creating a network namespace: %w", err)
	}
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, nil, fmt.Errorf("opening the new network namespace: %w", err)
	}
	if err := loopbackUp(); err != nil {
		f.Close()
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("listening in the network namespace: %w", err)
	}
	return &NetNS{f: f}, ln, nil
}

// ifreqFlags is struct ifreq with the flags member of its union.
type ifreqFlags struct {
	name  [syscall.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// loopbackUp sets IFF_UP on lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer syscall.Close(fd)
	var req ifreqFlags
	copy(req.name[:], "lo")
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("bringing lo up: %w", errno)
	}
	req.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("bringing lo up: %w", errno)
	}
	return nil
}

// dup is a copy of the namespace's descriptor for one child (closed by the
// command's Started).
func (n *NetNS) dup() (*os.File, error) {
	fd, err := syscall.Dup(int(n.f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("passing the network namespace: %w", err)
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "netns"), nil
}

// Close releases the host's hold on the namespace; it ends when its last
// process and socket are gone.
func (n *NetNS) Close() error {
	if n == nil {
		return nil
	}
	return n.f.Close()
}

// joinNetNS moves the calling thread (the init's, locked) into the
// namespace passed as fd, then closes fd.
func joinNetNS(fd int) error {
	defer syscall.Close(fd)
	if _, _, errno := syscall.RawSyscall(sysSetns, uintptr(fd), syscall.CLONE_NEWNET, 0); errno != 0 {
		return fmt.Errorf("joining the environment's network namespace: %w", errno)
	}
	return nil
}
