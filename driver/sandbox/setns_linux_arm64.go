package sandbox

const sysSetns = 268 // setns(2)
