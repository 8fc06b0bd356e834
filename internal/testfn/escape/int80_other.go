//go:build !amd64

package main

func int80(trap, a1 uintptr) uintptr { panic("int 0x80 exists on amd64 only") }

const (
	i386Unshare = 0
	x32Unshare  = 0
)

const foreignABI = false
