//go:build unix

package bundle

import "syscall"

const noFollow = syscall.O_NOFOLLOW
