package versions

import (
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/versions/versionstest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
)

func TestLocalContract(t *testing.T) {
	runContract(t, func(t *testing.T) *Store {
		b, err := NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return New(b, nil)
	})
}

// Two Local backends on one directory (the CLI and `nimbus dev`) see each
// other's writes and share the counter.
func TestLocalSharedDirectory(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewLocal(dir)
	b, _ := NewLocal(dir)
	sa, sb := New(a, nil), New(b, nil)
	mustPublish(t, sa, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, sb, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, true)
	mustPublish(t, sa, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, false)
}

func nomadStore(t *testing.T, addr string) *Store {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return New(NewNomad(c.Variables(), ""), nil)
}

func TestNomadContractAgainstDouble(t *testing.T) {
	runContract(t, func(t *testing.T) *Store {
		srv := httptest.NewServer(versionstest.New(t))
		t.Cleanup(srv.Close)
		return nomadStore(t, srv.URL)
	})
}

// With NOMAD_BINARY set, the same suite runs against `nomad agent -dev`.
func TestNomadContractAgainstAgent(t *testing.T) {
	addr := nomadtest.Start(t, nomadtest.Options{
		SkipMessage: "NOMAD_BINARY is not set: skipping the versions contract against a real Nomad agent",
	}).Addr
	runContract(t, func(t *testing.T) *Store {
		// One agent for the whole suite: subtests reuse function and layer
		// names, so each starts from an empty nimbus/ tree.
		wipe(t, addr)
		return nomadStore(t, addr)
	})
}

func wipe(t *testing.T, addr string) {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := c.Variables().PrefixList(Prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if _, err := c.Variables().Delete(m.Path, nil); err != nil {
			t.Fatal(err)
		}
	}
}
