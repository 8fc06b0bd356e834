#include "textflag.h"

// func int80(trap, a1 uintptr) uintptr
// A system call through the i386 ABI (int 0x80) from a 64-bit process.
TEXT ·int80(SB),NOSPLIT,$0-24
	MOVQ trap+0(FP), AX
	MOVQ a1+8(FP), BX
	INT $0x80
	MOVQ AX, ret+16(FP)
	RET
