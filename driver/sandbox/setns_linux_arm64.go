package sandbox

const (
	sysSetns   = 268 // setns(2)
	sysSeccomp = 277 // seccomp(2)
)
