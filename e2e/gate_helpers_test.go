package e2e

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Gates hold test functions (internal/testfn/stream, testdata/urlstream)
// until the test opens them. A gate is a URL that answers 404 until
// openGate, not a file: functions run isolated and do not see the host's
// files, but they reach the host's loopback.
var (
	gateOnce sync.Once
	gateSrv  *httptest.Server
	gateOpen sync.Map // path → true
	gateSeq  atomic.Int64
)

// newGate returns a closed gate's URL.
func newGate(t *testing.T) string {
	t.Helper()
	gateOnce.Do(func() {
		gateSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := gateOpen.Load(r.URL.Path); !ok {
				w.WriteHeader(http.StatusNotFound)
			}
		}))
	})
	return gateSrv.URL + "/gate-" + strconv.FormatInt(gateSeq.Add(1), 10)
}

// openGate lets the functions waiting at gate go on.
func openGate(t *testing.T, gate string) {
	t.Helper()
	gateOpen.Store(gate[len(gateSrv.URL):], true)
}
