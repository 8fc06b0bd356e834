package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// faultRecoveryBound is how long the service may take to answer again after
// a fault (generous: a loaded 2-core machine restarts a gateway slowly).
const faultRecoveryBound = 90 * time.Second

// faultOps are the three kinds of request the load mixes.
var faultOps = []string{"sync", "async", "url"}

// faultPhase counts what the load saw while one fault (or none) was on.
type faultPhase struct {
	name     string
	ok       map[string]int // op → answered as expected
	errs     map[string]int // "op: kind" → count
	outage   time.Duration  // from the fault to every probe answering
	recovery time.Duration  // from the restart to every probe answering
}

// faultSuite is the fault suite's world: two `nimbus dev` gateways sharing
// one external NATS, a load against both, and what it saw.
type faultSuite struct {
	t        *testing.T
	bin      string
	conf     string
	specDir  string
	stampLog string
	echoDir  string
	stampDir string

	natsDir    string
	natsListen string
	natsToken  string
	nats       *natsembed.Server

	// consul is the agent the gateways register in; the URL load finds
	// each gateway's echo URL service through its health endpoint.
	consul *consultest.Agent
	health *consulapi.Health

	gws     [2]*faultGateway
	clients [2]*lambda.Client
	http    *http.Client

	mu       sync.Mutex
	phases   []*faultPhase
	accepted map[string]bool   // async event ids answered 202
	refused  map[string]string // async event ids answered otherwise → phase
	nextID   atomic.Int64
}

// faultGateway is one gateway slot: restarts keep its port and state dir.
type faultGateway struct {
	listen   string
	base     string
	stateDir string
	proc     *nimbusProc
}

// TestFaultSuite runs a steady mixed load (sync Invoke, async Invoke,
// function URL) against two `nimbus dev` gateways that share one external
// NATS and register themselves and their function URLs in one Consul
// agent, and in turn SIGKILLs one gateway, the runtime processes of one
// gateway's instances, the NATS server and the Consul agent, restarting
// each (the instance restarts its runtime by itself). The URL load reaches
// each gateway the way a Consul DNS or mesh client does: through the
// passing instances of the "echo-url" service in Consul's health endpoint.
// It prints what the load saw per fault and asserts that every async event
// answered 202 reached the function, that the service answered again
// within a generous bound after each fault, and that after the Consul
// agent's restart both gateways and their URL services are registered and
// passing again.
func TestFaultSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four faults under load")
	}
	s := &faultSuite{
		t: t, bin: nimbusOnce(t), specDir: t.TempDir(),
		stampLog: filepath.Join(t.TempDir(), "stamp.log"),
		echoDir:  testfn.Dir(t, "echo"), stampDir: testfn.Dir(t, "stamp"),
		natsDir:  t.TempDir(),
		http:     &http.Client{Timeout: 20 * time.Second},
		accepted: map[string]bool{}, refused: map[string]string{},
	}
	s.startNATS("127.0.0.1:0", "")
	t.Cleanup(func() { s.nats.Shutdown() })
	u, err := url.Parse(s.nats.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s.natsListen, s.natsToken = u.Host, s.nats.Token()
	s.consul = consultest.StartPersistent(t)
	s.health = s.consul.Client(t).Health()

	writeTree(t, s.specDir, map[string]string{"nimbus.hcl": fmt.Sprintf(`
function "echo" {
  runtime = "provided.al2023"
  timeout = "10s"
  code { dir = %q }
  url { auth = "NONE" }
}

function "stamp" {
  runtime     = "provided.al2023"
  timeout     = "10s"
  environment = { STAMP_LOG = %q }
  code { dir = %q }
  async { max_retries = 2 }
}
`, s.echoDir, testfn.LogURL(t, s.stampLog), s.stampDir)})
	s.conf = filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(s.conf), map[string]string{filepath.Base(s.conf): fmt.Sprintf(`region = %q
account_id = %q
invoke_key = %q
access_key %q {
  secret = %q
}
queue {
  nats_url     = %q
  ack_wait     = "2s"
  retry_delays = ["1s", "2s"]
  workers      = 4
}
consul {
  address        = %q
  check_interval = "1s"
}
`, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey, s.nats.ClientURL(), s.consul.HTTPAddr)})

	for i := range s.gws {
		s.gws[i] = &faultGateway{listen: "127.0.0.1:0", stateDir: filepath.Join(t.TempDir(), "state")}
		s.startGateway(i)
		s.clients[i] = lambda.New(lambda.Options{
			Region: e2eRegion, BaseEndpoint: aws.String(s.gws[i].base), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
			HTTPClient:  s.http,
		})
	}

	s.awaitRegistered("before the load")

	// The load: per gateway and kind of request, one client at a steady pace.
	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	s.phase("steady")
	t.Cleanup(func() { // the table on a failure too
		if t.Failed() {
			s.report(s.stamped())
		}
	})
	for slot := range s.gws {
		for _, op := range faultOps {
			load.Add(1)
			go func() {
				defer load.Done()
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						s.do(ctx, slot, op, true)
					}
				}
			}()
		}
	}
	defer func() { stopLoad(); load.Wait() }()
	s.awaitLoad(20)

	// Fault 1: gateway 0 dies; it comes back on its port.
	s.fault("gateway 0 SIGKILL", []int{0}, func() {
		s.gws[0].proc.kill()
		s.awaitDown(0, "async")
	}, func() { s.startGateway(0) })

	// Fault 2: the runtime processes of gateway 0's instances die; the
	// instances start new ones by themselves.
	s.fault("gateway 0's instance runtimes SIGKILL", []int{0}, func() {
		// The sync and URL load keep an echo runtime there; stamp's run
		// where the shared stream's events are taken, usually both.
		var pids []int
		eventually(t, 60*time.Second, func() bool {
			pids = runtimePIDs(s.gws[0].proc.cmd.Process.Pid, s.echoDir)
			return len(pids) >= 1
		}, "gateway 0 runs an echo runtime")
		stamps := runtimePIDs(s.gws[0].proc.cmd.Process.Pid, s.stampDir)
		t.Logf("killing %d echo and %d stamp runtime processes of gateway 0", len(pids), len(stamps))
		pids = append(pids, stamps...)
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("killing runtime %d: %v", pid, err)
			}
		}
		eventually(t, 30*time.Second, func() bool {
			for _, pid := range pids {
				if procAlive(pid) {
					return false
				}
			}
			return true
		}, "the killed runtimes to be gone")
	}, nil)
	t.Logf("gateway 0 runs %d echo and %d stamp runtime processes after the kill",
		len(runtimePIDs(s.gws[0].proc.cmd.Process.Pid, s.echoDir)), len(runtimePIDs(s.gws[0].proc.cmd.Process.Pid, s.stampDir)))

	// Fault 3: the NATS server dies; it comes back on its port and store.
	s.fault("NATS server shutdown", []int{0, 1}, func() {
		s.nats.Shutdown()
		s.awaitDown(0, "async")
		s.awaitDown(1, "async")
	}, func() { s.startNATS(s.natsListen, s.natsToken) })

	// Fault 4: the Consul agent dies; it comes back on its ports and data
	// dir. Invokes do not need it; the URL load finds no gateway meanwhile.
	s.fault("Consul agent SIGKILL", []int{0, 1}, func() {
		s.consul.Kill()
		s.awaitDown(0, "url")
		s.awaitDown(1, "url")
	}, func() {
		if err := s.consul.Restart(); err != nil {
			t.Fatalf("restarting the consul agent: %v", err)
		}
	})
	s.awaitRegistered("after its restart")

	s.phase("after")
	s.awaitLoad(20)
	stopLoad()
	load.Wait()

	// Every event answered 202 reaches the function, at least once.
	var seen map[string]int
	eventually(t, 2*time.Minute, func() bool {
		seen = s.stamped()
		s.mu.Lock()
		defer s.mu.Unlock()
		for id := range s.accepted {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	}, "every accepted async event processed")
	s.report(seen)
}

// awaitRegistered waits until both gateways and their echo URL services
// are registered and passing in Consul.
func (s *faultSuite) awaitRegistered(when string) {
	s.t.Helper()
	for _, svc := range []string{"nimbus-gateway", "echo-url"} {
		eventually(s.t, faultRecoveryBound, func() bool {
			entries, _, err := s.health.Service(svc, "", true, nil)
			return err == nil && len(entries) == len(s.gws)
		}, fmt.Sprintf("both gateways' %s services passing in Consul %s", svc, when))
	}
}

// startNATS starts the external NATS server on listen with the suite's
// store dir (token empty: a random one).
func (s *faultSuite) startNATS(listen, token string) {
	s.t.Helper()
	srv, err := natsembed.Start(natsembed.Config{Dir: s.natsDir, Listen: listen, Token: token, Name: "fault-nats"})
	if err != nil {
		s.t.Fatalf("starting NATS on %s: %v", listen, err)
	}
	s.nats = srv
}

// startGateway (re)starts gateway slot i, on its former port if it had one.
func (s *faultSuite) startGateway(i int) {
	s.t.Helper()
	g := s.gws[i]
	cmd := exec.Command(s.bin, "dev", "--listen", g.listen, "--config", s.conf, "--state-dir", g.stateDir, "--log-level", "warn", s.specDir)
	cmd.Dir = s.specDir
	p := startNimbusProc(s.t, cmd)
	g.proc = p
	s.t.Cleanup(func() { _ = p.stop(syscall.SIGTERM) }) // before startNimbusProc's kill
	if g.base == "" {
		u, err := url.Parse(g.proc.endpoint)
		if err != nil {
			s.t.Fatal(err)
		}
		g.base, g.listen = g.proc.endpoint, u.Host
	} else if g.proc.endpoint != g.base {
		s.t.Fatalf("gateway %d came back on %s, was %s", i, g.proc.endpoint, g.base)
	}
}

// phase starts counting into a new phase.
func (s *faultSuite) phase(name string) *faultPhase {
	p := &faultPhase{name: name, ok: map[string]int{}, errs: map[string]int{}}
	s.mu.Lock()
	s.phases = append(s.phases, p)
	s.mu.Unlock()
	return p
}

// awaitLoad waits until the current phase saw n good answers of each kind
// from each gateway's load (2n in all per kind).
func (s *faultSuite) awaitLoad(n int) {
	s.t.Helper()
	eventually(s.t, faultRecoveryBound, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		p := s.phases[len(s.phases)-1]
		for _, op := range faultOps {
			if p.ok[op] < 2*n {
				return false
			}
		}
		return true
	}, "the load to be answered")
}

// fault runs kill (which returns once the fault took effect) and restart
// (nil: the part restarts by itself) in a phase of its own, then measures
// until every kind of request answers on each of the slots, both from the
// fault and from the restart, and lets the load run on the recovered
// service. The service must answer within faultRecoveryBound of the
// restart.
func (s *faultSuite) fault(name string, slots []int, kill, restart func()) {
	s.t.Helper()
	p := s.phase(name)
	began := time.Now()
	kill()
	if restart != nil {
		restart()
	}
	restarted := time.Now()
	var last time.Time
	eventually(s.t, faultRecoveryBound, func() bool {
		if time.Since(last) < 200*time.Millisecond { // pace the probes
			return false
		}
		last = time.Now()
		for _, slot := range slots {
			for _, op := range faultOps {
				if !s.do(context.Background(), slot, op, false) {
					return false
				}
			}
		}
		return true
	}, name+": every kind of request answered again")
	s.mu.Lock()
	p.outage, p.recovery = time.Since(began), time.Since(restarted)
	s.mu.Unlock()
	s.awaitLoad(10)
}

// awaitDown waits until op on slot fails: the fault took effect.
func (s *faultSuite) awaitDown(slot int, op string) {
	s.t.Helper()
	var last time.Time
	eventually(s.t, faultRecoveryBound, func() bool {
		if time.Since(last) < 100*time.Millisecond {
			return false
		}
		last = time.Now()
		return !s.do(context.Background(), slot, op, false)
	}, fmt.Sprintf("%s requests to gateway %d to fail", op, slot))
}

// do sends one request of kind op to gateway slot and reports whether it
// was answered as expected; counted says whether it counts in the phase's
// figures (probes do not, but an accepted event is always remembered).
func (s *faultSuite) do(ctx context.Context, slot int, op string, counted bool) bool {
	var kind string
	switch op {
	case "sync":
		out, err := s.clients[slot].Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"fault":"sync"}`)})
		switch {
		case err != nil:
			kind = errKind(err)
		case out.FunctionError != nil:
			kind = "FunctionError " + *out.FunctionError
		case out.StatusCode != http.StatusOK:
			kind = "HTTP " + strconv.Itoa(int(out.StatusCode))
		}
	case "async":
		id := fmt.Sprintf("ev-%06d", s.nextID.Add(1))
		payload := fmt.Sprintf(`{"records":[{"data":%q}]}`, base64.StdEncoding.EncodeToString([]byte(id)))
		out, err := s.clients[slot].Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("stamp"), InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)})
		switch {
		case err != nil:
			kind = errKind(err)
		case out.StatusCode != http.StatusAccepted:
			kind = "HTTP " + strconv.Itoa(int(out.StatusCode))
		}
		s.mu.Lock()
		if kind == "" {
			s.accepted[id] = true
		} else {
			s.refused[id] = s.phases[len(s.phases)-1].name
		}
		s.mu.Unlock()
	case "url":
		addr, why := s.urlAddr(ctx, slot)
		if why != "" {
			kind = why
			break
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/url/echo/fault", nil)
		if err != nil {
			s.t.Error(err)
			return false
		}
		resp, err := s.http.Do(req)
		if err != nil {
			kind = errKind(err)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				kind = "HTTP " + strconv.Itoa(resp.StatusCode)
			}
		}
	}
	if ctx.Err() != nil {
		return false // the load stopped under this request
	}
	if counted {
		s.mu.Lock()
		p := s.phases[len(s.phases)-1]
		if kind == "" {
			p.ok[op]++
		} else {
			p.errs[op+": "+kind]++
		}
		s.mu.Unlock()
	}
	return kind == ""
}

// urlAddr finds gateway slot's echo URL service among the passing ones in
// Consul's health endpoint, as a Consul DNS or mesh client would; why says
// what failed.
func (s *faultSuite) urlAddr(ctx context.Context, slot int) (addr, why string) {
	u, err := url.Parse(s.gws[slot].base)
	if err != nil {
		s.t.Error(err)
		return "", "bad base"
	}
	entries, _, err := s.health.Service("echo-url", "", true, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", "consul: " + errKind(err)
	}
	for _, e := range entries {
		a := net.JoinHostPort(e.Service.Address, strconv.Itoa(e.Service.Port))
		if a == u.Host {
			return a, ""
		}
	}
	return "", "consul: not passing"
}

// errKind names an error by its type: the Lambda error code when the
// gateway answered, else what the connection did.
func errKind(err error) string {
	var apiErr smithy.APIError
	var ne net.Error
	switch {
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "transport error"
	}
}

// stamped reads the stamp function's log: event id → times processed.
func (s *faultSuite) stamped() map[string]int {
	s.t.Helper()
	seen := map[string]int{}
	f, err := os.Open(s.stampLog)
	if errors.Is(err, os.ErrNotExist) {
		return seen
	}
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id, _, ok := strings.Cut(sc.Text(), "\t"); ok {
			seen[id]++
		}
	}
	if err := sc.Err(); err != nil {
		s.t.Fatal(err)
	}
	return seen
}

// report prints the table of the phases and the async tally.
func (s *faultSuite) report(seen map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-38s %8s %8s %8s %9s %9s  %s\n", "phase", "sync ok", "async202", "url ok", "outage", "recovery", "errors by type")
	total := map[string]int{}
	for _, p := range s.phases {
		out, rec := "-", "-"
		if p.outage > 0 {
			out, rec = p.outage.Round(100*time.Millisecond).String(), p.recovery.Round(100*time.Millisecond).String()
		}
		keys := make([]string, 0, len(p.errs))
		for k := range p.errs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		errs := make([]string, 0, len(keys))
		for _, k := range keys {
			errs = append(errs, fmt.Sprintf("%s ×%d", k, p.errs[k]))
		}
		if len(errs) == 0 {
			errs = append(errs, "none")
		}
		fmt.Fprintf(&b, "%-38s %8d %8d %8d %9s %9s  %s\n", p.name, p.ok["sync"], p.ok["async"], p.ok["url"], out, rec, strings.Join(errs, "; "))
		for op, n := range p.ok {
			total[op] += n
		}
	}
	processed, dups := 0, 0
	for id := range s.accepted {
		if seen[id] > 0 {
			processed++
		}
	}
	unconfirmed := map[string]int{} // phase → events processed though refused
	for id, n := range seen {
		dups += n - 1
		if ph, ok := s.refused[id]; ok {
			unconfirmed[ph]++
		}
	}
	fmt.Fprintf(&b, "answered: sync %d, async %d, url %d\n", total["sync"], total["async"], total["url"])
	fmt.Fprintf(&b, "async events: %d accepted (202), %d of them processed, %d not (lost); %d duplicate deliveries\n",
		len(s.accepted), processed, len(s.accepted)-processed, dups)
	fmt.Fprintf(&b, "async events answered with an error (probes included): %d, processed all the same:", len(s.refused))
	if len(unconfirmed) == 0 {
		b.WriteString(" none")
	}
	for _, p := range s.phases {
		if n := unconfirmed[p.name]; n > 0 {
			fmt.Fprintf(&b, " %d during %q", n, p.name)
		}
	}
	b.WriteString("\n")
	s.t.Log(b.String())
}

// runtimePIDs lists the live descendants of root whose working directory
// is one of dirs: the function runtimes its instances started.
func runtimePIDs(root int, dirs ...string) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
	}
	var out []int
	for pid := range parent {
		under := false
		for p := parent[pid]; p > 1 && !under; p = parent[p] {
			under = p == root
		}
		if !under {
			continue
		}
		// The working directory is the code dir: the host's path for an
		// unisolated runtime, /var/task (a bind mount of the same
		// directory) in a sandbox, so compare the directories themselves.
		cwd, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if di, err := os.Stat(d); err == nil && os.SameFile(cwd, di) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// procAlive reports whether pid runs (a zombie does not).
func procAlive(pid int) bool {
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
	return len(f) > 0 && f[0] != "Z"
}
