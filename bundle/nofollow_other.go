//go:build !unix

package bundle

const noFollow = 0
