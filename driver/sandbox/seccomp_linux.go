//go:build linux

package sandbox

import (
	"fmt"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
)

// denied are refused with EPERM, as in Docker's default profile for a
// process without privileges: kernel and system administration, other
// processes' inspection, namespaces, mounts, keyrings, BPF and perf.
var denied = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
	"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
	"mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
	"open_by_handle_at", "open_tree", "perf_event_open", "personality", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
	"reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime",
	"swapoff", "swapon", "sysfs", "umount2", "unshare", "uselib", "userfaultfd",
	"ustat", "vhangup", "_sysctl", "syslog",
}

// nsFlags are clone's namespace flags: creating namespaces (a user
// namespace needs no privilege) is refused.
const nsFlags = syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC |
	syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET | 0x02000000 /* CLONE_NEWCGROUP */

func loadSeccomp() error {
	if !seccomp.Supported() {
		return fmt.Errorf("seccomp is not supported by this kernel")
	}
	policy, native, err := seccompPolicy()
	if err != nil {
		return err
	}
	if err := seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: policy}); err != nil {
		return fmt.Errorf("installing the seccomp filter: %w", err)
	}
	return loadArchFilter(native)
}

// seccompPolicy is the native ABI's filter, and that ABI's audit arch.
func seccompPolicy() (seccomp.Policy, uint32, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return seccomp.Policy{}, 0, fmt.Errorf("seccomp: %w", err)
	}
	var names []string
	for _, n := range denied {
		if _, ok := info.SyscallNames[n]; ok { // some are absent on some architectures
			names = append(names, n)
		}
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: names},
			{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "clone", Conditions: []seccomp.Condition{{Argument: 0, Operation: seccomp.BitsSet, Value: nsFlags}}},
			}},
			// clone3 passes its flags in memory, out of a filter's reach:
			// ENOSYS makes the C library fall back to clone.
			{Action: seccomp.ActionErrno | seccomp.Action(syscall.ENOSYS), Names: []string{"clone3"}},
		},
	}, uint32(info.ID), nil
}

// Offsets in struct seccomp_data and the BPF opcodes the arch filter uses.
const (
	seccompDataArch       = 4
	bpfLdWAbs             = syscall.BPF_LD | syscall.BPF_W | syscall.BPF_ABS
	bpfJeqK               = syscall.BPF_JMP | syscall.BPF_JEQ | syscall.BPF_K
	bpfRetK               = syscall.BPF_RET | syscall.BPF_K
	seccompSetModeFilter  = 1
	seccompRetKillProcess = 0x80000000
	seccompRetAllow       = 0x7fff0000
)

// loadArchFilter stacks a second filter that kills the process on any
// system call made through another ABI than the native one (on x86_64: int
// 0x80 or sysenter, the i386 ABI), as libseccomp does for architectures a
// profile does not list. go-seccomp-bpf's filter lets a foreign ABI's calls
// through to its default action (allow here), so without this one every
// denied call stayed reachable under its i386 number. (x32 calls share the
// native arch and are refused with ENOSYS by go-seccomp-bpf's filter.)
func loadArchFilter(native uint32) error {
	prog := archFilter(native)
	fprog := syscall.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := syscall.RawSyscall(sysSeccomp, seccompSetModeFilter, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("installing the seccomp arch filter: %w", errno)
	}
	return nil
}

// archFilter is the program loadArchFilter installs.
func archFilter(native uint32) []syscall.SockFilter {
	return []syscall.SockFilter{
		{Code: bpfLdWAbs, K: seccompDataArch},
		{Code: bpfJeqK, Jt: 1, Jf: 0, K: native},
		{Code: bpfRetK, K: seccompRetKillProcess},
		{Code: bpfRetK, K: seccompRetAllow},
	}
}
