package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// invokeAPILine is the line `nimbus dev` and `nimbus gateway --dev` print
// once they serve, with the Invoke API's base URL.
var invokeAPILine = regexp.MustCompile(`^Invoke API:\s+(http://\S+)`)

// nimbusStopTimeout bounds a graceful stop of a nimbus process.
const nimbusStopTimeout = 60 * time.Second

// nimbusProc is a running nimbus process that announced its Invoke API.
type nimbusProc struct {
	endpoint string        // the Invoke API base URL it printed
	stderr   *lockedBuffer // everything it wrote to stderr
	stdout   *lockedBuffer // what it wrote to stdout after the Invoke API line

	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, valid after exited
}

// startNimbusProc starts cmd, collecting its stderr, reads its stdout up to
// the Invoke API line and collects the lines after it in stdout. The
// process is killed on test cleanup if it still runs, and its TMPDIR
// removed after that.
func startNimbusProc(t *testing.T, cmd *exec.Cmd) *nimbusProc {
	t.Helper()
	// Its temporary dirs (nimbus-dev-*, nimbus-queue-*) go in the test's own
	// temp dir, removed after the process even when it had to be killed.
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	// An io.Pipe rather than StdoutPipe: Wait may run while we still read.
	pr, pw := io.Pipe()
	p := &nimbusProc{stderr: &lockedBuffer{}, stdout: &lockedBuffer{}, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pw, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", strings.Join(cmd.Args, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		_ = pw.Close()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	sc := bufio.NewScanner(pr)
	for p.endpoint == "" && sc.Scan() {
		if m := invokeAPILine.FindStringSubmatch(sc.Text()); m != nil {
			p.endpoint = m[1]
		}
	}
	go func() {
		// The scanner may hold lines read past the Invoke API line.
		for sc.Scan() {
			_, _ = p.stdout.Write(append(sc.Bytes(), '\n'))
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if p.endpoint == "" {
		p.kill()
		t.Fatalf("%s printed no Invoke API endpoint:\n%s", strings.Join(cmd.Args, " "), p.stderr)
	}
	return p
}

// stop sends sig and waits for the process to exit, returning its exit
// error; after nimbusStopTimeout it kills the process and says so.
func (p *nimbusProc) stop(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		<-p.exited // it had already exited
		return p.err
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(nimbusStopTimeout):
		p.kill()
		return fmt.Errorf("did not stop within %s of %v", nimbusStopTimeout, sig)
	}
}

// kill SIGKILLs the process, if it still runs, and waits for it.
func (p *nimbusProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}
