package sandbox

const (
	sysSetns   = 308 // setns(2)
	sysSeccomp = 317 // seccomp(2)
)
