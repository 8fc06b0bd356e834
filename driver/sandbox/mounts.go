package sandbox

import (
	"fmt"
	"sort"
)

// DefaultChrootEnv is the host paths bound read-only into every environment
// (host path → path inside) when the operator configures none: what
// provided (Go, static or libc-linked) binaries, python3 and node need to
// run, resolve names and verify TLS. It never includes /etc/shadow, /etc as
// a whole, /root, /home or any Nomad data directory.
var DefaultChrootEnv = map[string]string{
	"/bin":                 "/bin",
	"/sbin":                "/sbin",
	"/lib":                 "/lib",
	"/lib32":               "/lib32",
	"/lib64":               "/lib64",
	"/usr":                 "/usr",
	"/etc/ssl":             "/etc/ssl",
	"/etc/ca-certificates": "/etc/ca-certificates",
	"/etc/pki":             "/etc/pki",
	"/etc/alternatives":    "/etc/alternatives",
	"/etc/ld.so.cache":     "/etc/ld.so.cache",
	"/etc/ld.so.conf":      "/etc/ld.so.conf",
	"/etc/ld.so.conf.d":    "/etc/ld.so.conf.d",
	"/etc/resolv.conf":     "/etc/resolv.conf",
	"/etc/hosts":           "/etc/hosts",
	"/etc/nsswitch.conf":   "/etc/nsswitch.conf",
	"/etc/localtime":       "/etc/localtime",
	"/etc/mime.types":      "/etc/mime.types",
	"/etc/protocols":       "/etc/protocols",
	"/etc/services":        "/etc/services",
}

// ChrootMounts turns a chroot_env map into read-only mounts.
func ChrootMounts(env map[string]string) []Mount {
	out := make([]Mount, 0, len(env))
	for src, dst := range env {
		out = append(out, Mount{Source: src, Target: dst})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// DefaultMounts is ChrootMounts(DefaultChrootEnv).
func DefaultMounts() []Mount { return ChrootMounts(DefaultChrootEnv) }

// Passwd is a synthetic /etc/passwd naming root and the function's user
// (sbx_user1051, as on Lambda), so libraries that look up the current user work.
func Passwd(uid, gid uint32) string {
	return fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:%d:%d::/tmp:/sbin/nologin\n", uid, gid)
}

// Group is the matching synthetic /etc/group.
func Group(gid uint32) string {
	return fmt.Sprintf("root:x:0:\nsbx_user1051:x:%d:\n", gid)
}
