// Package redistest starts a real redis-server (the Debian package's
// /usr/bin/redis-server, found on PATH) on a free loopback port for tests:
// no persistence (`--save "" --appendonly no`), bound to 127.0.0.1, ready
// once it answers PING, stopped on test cleanup. A server can require a
// password, can be stopped and started again on the same port, and can be
// paused (SIGSTOP) and resumed, so tests can take the broker away, hang it
// and bring it back.
//
// Tests skip, saying why, only when redis-server is not on PATH.
//
// It is test support only: production packages must not import it. It may
// import anything.
package redistest
