package sandbox

const sysSetns = 308 // setns(2)
