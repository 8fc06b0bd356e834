package main

// int80 makes system call trap (an i386 number) with one argument through
// int 0x80 and returns the kernel's raw result (-errno on failure).
func int80(trap, a1 uintptr) uintptr

// i386 and x32 numbers of unshare(2).
const (
	i386Unshare = 310
	x32Unshare  = 0x40000000 | 272
)

const foreignABI = true
