package versionstest

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// The double follows Nomad's CAS rules as the real client sees them.
func TestCheckAndSet(t *testing.T) {
	d, v := variables(t)
	created, _, err := v.CheckedCreate(&api.Variable{Path: "nimbus/x", Items: api.VariableItems{"a": "1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conflict api.ErrCASConflict
	if _, _, err := v.CheckedCreate(&api.Variable{Path: "nimbus/x", Items: api.VariableItems{"a": "2"}}, nil); !errors.As(err, &conflict) {
		t.Fatalf("second create: %v", err)
	}
	stale := *created
	created.Items = api.VariableItems{"a": "3"}
	if _, _, err := v.CheckedUpdate(created, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.CheckedUpdate(&stale, nil); !errors.As(err, &conflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := v.CheckedDelete("nimbus/x", stale.ModifyIndex, nil); !errors.As(err, &conflict) {
		t.Fatalf("stale delete: %v", err)
	}
	if got := d.Items("nimbus/x"); got["a"] != "3" {
		t.Fatalf("items %v", got)
	}
	if _, _, err := v.Read("nimbus/nope", nil); !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Fatalf("missing read: %v", err)
	}
}

// variables is a fresh double and a Nomad Variables client of it.
func variables(t *testing.T) (*Variables, *api.Variables) {
	t.Helper()
	d := New(t)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return d, c.Variables()
}
