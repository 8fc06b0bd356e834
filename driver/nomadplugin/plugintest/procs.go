package plugintest

import (
	"os"
	"strconv"
	"strings"
)

// StatFields returns the fields of /proc/<pid>/stat that follow the
// command name, so proc(5)'s field N is at index N-3 (state first), or nil
// when the process is gone.
func StatFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	// The command name may hold spaces and parentheses; it ends at the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

// Gone reports a process that no longer runs (or is a zombie nobody reaps).
func Gone(pid int) bool {
	f := StatFields(pid)
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// LiveProcesses lists the running processes whose stat fields (as
// StatFields returns them) satisfy match.
func LiveProcesses(match func(fields []string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := StatFields(pid); len(f) > 0 && match(f) && !Gone(pid) {
			out = append(out, pid)
		}
	}
	return out
}
