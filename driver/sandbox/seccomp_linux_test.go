//go:build linux

package sandbox

import (
	"encoding/binary"
	"syscall"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/net/bpf"
)

// auditArchI386 is AUDIT_ARCH_I386: the arch of a call made through int 0x80.
const auditArchI386 = 0x40000003

// runFilter runs a seccomp program on a struct seccomp_data holding nr and
// arch (x/net/bpf's VM loads big-endian words: the fields are laid out so).
func runFilter(t *testing.T, insts []bpf.Instruction, nr, arch uint32, arg0 uint64) uint32 {
	t.Helper()
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], arch)
	// args[0]'s low word (what clone's condition reads) is at 16.
	binary.BigEndian.PutUint32(data[16:], uint32(arg0))
	n, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

func rawToInsts(t *testing.T, prog []syscall.SockFilter) []bpf.Instruction {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("arch filter does not disassemble")
	}
	return insts
}

// TestForeignABICallsAreKilled runs both of the environment's filters on
// calls through the native ABI and through the i386 one. The policy alone
// lets an i386 call through (its arch check falls through to the default
// action, allow): the arch filter is what refuses it. Stacked seccomp
// filters apply the most severe of their answers.
func TestForeignABICallsAreKilled(t *testing.T) {
	policy, native, err := seccompPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if native != 0xc000003e { // AUDIT_ARCH_X86_64
		t.Skipf("the i386 ABI is an x86_64 matter; arch %#x", native)
	}
	main, err := policy.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	archProg := rawToInsts(t, archFilter(native))
	const unshareX8664, unshareI386 = 272, 310
	cases := []struct {
		name        string
		nr, arch    uint32
		main, arch2 uint32
	}{
		{"native unshare", unshareX8664, native, uint32(seccomp.ActionErrno) | uint32(syscall.EPERM), seccompRetAllow},
		{"native getpid", syscall.SYS_GETPID, native, seccompRetAllow, seccompRetAllow},
		{"x32 unshare", 0x40000000 | 272, native, uint32(seccomp.ActionErrno) | uint32(syscall.ENOSYS), seccompRetAllow},
		// The hole: the policy allows i386's unshare; the arch filter kills.
		{"i386 unshare", unshareI386, auditArchI386, seccompRetAllow, seccompRetKillProcess},
		{"i386 getpid", 20, auditArchI386, seccompRetAllow, seccompRetKillProcess},
	}
	for _, c := range cases {
		if got := runFilter(t, main, c.nr, c.arch, syscall.CLONE_NEWUSER); got != c.main {
			t.Errorf("%s: policy answers %#x, want %#x", c.name, got, c.main)
		}
		if got := runFilter(t, archProg, c.nr, c.arch, 0); got != c.arch2 {
			t.Errorf("%s: arch filter answers %#x, want %#x", c.name, got, c.arch2)
		}
	}
}
