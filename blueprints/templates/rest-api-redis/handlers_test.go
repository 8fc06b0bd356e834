package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// memStore is an in-memory Store for the handler tests.
type memStore struct {
	mu    sync.Mutex
	items map[string]Item
}

func (m *memStore) Put(_ context.Context, it Item) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[it.ID] = it
	return nil
}

func (m *memStore) Get(_ context.Context, id string) (Item, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	return it, ok, nil
}

func (m *memStore) List(context.Context) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Item
	for _, it := range m.items {
		out = append(out, it)
	}
	sortItems(out)
	return out, nil
}

func (m *memStore) Delete(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.items[id]
	delete(m.items, id)
	return ok, nil
}

// stores are the Stores every handler test runs against: memory always,
// and the real Redis at REDIS_URL when it is set (CI starts one as a
// service container), under a key of the test's own that it removes.
func stores(t *testing.T) map[string]Store {
	out := map[string]Store{"memory": &memStore{items: map[string]Item{}}}
	if url := os.Getenv("REDIS_URL"); url != "" {
		key := fmt.Sprintf("test:%s:%d", t.Name(), time.Now().UnixNano())
		rs, err := NewRedisStore(url, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.rdb.Del(context.Background(), key); rs.rdb.Close() })
		out["redis"] = rs
	} else {
		t.Log("REDIS_URL is not set: the Redis store is not tested")
	}
	return out
}

func urlRequest(method, query, body string) request {
	r := events.LambdaFunctionURLRequest{Body: body, QueryStringParameters: map[string]string{}}
	r.RequestContext.HTTP.Method = method
	if k, v, ok := strings.Cut(query, "="); ok {
		r.QueryStringParameters[k] = v
	}
	return r
}

func TestCreateGetListDelete(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			n := 0
			a := &API{Store: s, Now: func() time.Time { n++; return time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC) },
				NewID: func() string { return fmt.Sprintf("id%d", n) }}
			created := map[string]Item{}
			for _, body := range []string{`{"name":"tea","data":{"qty":2}}`, `{"name":"coffee"}`} {
				r, err := a.Create(ctx, urlRequest(http.MethodPost, "", body))
				if err != nil || r.StatusCode != http.StatusCreated {
					t.Fatalf("create %s: %v %d %s", body, err, r.StatusCode, r.Body)
				}
				var it Item
				if err := json.Unmarshal([]byte(r.Body), &it); err != nil {
					t.Fatal(err)
				}
				if r.Headers["Location"] != "?id="+it.ID {
					t.Errorf("Location %q for %s", r.Headers["Location"], it.ID)
				}
				created[it.Name] = it
			}
			r, _ := a.Get(ctx, urlRequest(http.MethodGet, "id="+created["tea"].ID, ""))
			var got Item
			if err := json.Unmarshal([]byte(r.Body), &got); err != nil || r.StatusCode != http.StatusOK {
				t.Fatalf("get: %d %s", r.StatusCode, r.Body)
			}
			if got.Name != "tea" || string(got.Data) != `{"qty":2}` || !got.Created.Equal(created["tea"].Created) {
				t.Fatalf("get returned %+v, stored %+v", got, created["tea"])
			}
			r, _ = a.List(ctx, urlRequest(http.MethodGet, "", ""))
			var list struct {
				Items []Item
				Count int
			}
			if err := json.Unmarshal([]byte(r.Body), &list); err != nil || list.Count != 2 || list.Items[0].Name != "tea" || list.Items[1].Name != "coffee" {
				t.Fatalf("list: %d %s", r.StatusCode, r.Body)
			}
			r, _ = a.Delete(ctx, urlRequest(http.MethodDelete, "id="+created["tea"].ID, ""))
			if r.StatusCode != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
			}
			if r, _ = a.Delete(ctx, urlRequest(http.MethodDelete, "id="+created["tea"].ID, "")); r.StatusCode != http.StatusNotFound {
				t.Fatalf("second delete: %d %s", r.StatusCode, r.Body)
			}
			if r, _ = a.Get(ctx, urlRequest(http.MethodGet, "id="+created["tea"].ID, "")); r.StatusCode != http.StatusNotFound {
				t.Fatalf("get after delete: %d %s", r.StatusCode, r.Body)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	a := newAPI(&memStore{items: map[string]Item{}})
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		call   func(context.Context, request) (response, error)
		req    request
		status int
		says   string
	}{
		{"not JSON", a.Create, urlRequest(http.MethodPost, "", "tea"), http.StatusBadRequest, "want a JSON object"},
		{"unknown field", a.Create, urlRequest(http.MethodPost, "", `{"name":"x","colour":"red"}`), http.StatusBadRequest, "colour"},
		{"no name", a.Create, urlRequest(http.MethodPost, "", `{"data":1}`), http.StatusBadRequest, "name must be"},
		{"too large", a.Create, urlRequest(http.MethodPost, "", strings.Repeat(" ", maxBody+1)), http.StatusRequestEntityTooLarge, "64 KiB"},
		{"create with GET", a.Create, urlRequest(http.MethodGet, "", `{"name":"x"}`), http.StatusMethodNotAllowed, "use POST"},
		{"get without id", a.Get, urlRequest(http.MethodGet, "", ""), http.StatusBadRequest, "?id=ID"},
		{"delete with GET", a.Delete, urlRequest(http.MethodGet, "id=x", ""), http.StatusMethodNotAllowed, "use DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.call(ctx, tc.req)
			if err != nil || r.StatusCode != tc.status || !strings.Contains(r.Body, tc.says) {
				t.Fatalf("got %v %d %s, want %d saying %q", err, r.StatusCode, r.Body, tc.status, tc.says)
			}
		})
	}
}

func TestIDFromPath(t *testing.T) {
	req := urlRequest(http.MethodGet, "", "")
	req.RawPath = "/items/abc123"
	if id, _, ok := itemID(req); !ok || id != "abc123" {
		t.Fatalf("itemID(/items/abc123) = %q %v", id, ok)
	}
}

func TestPick(t *testing.T) {
	env := map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}
	for _, h := range []string{"create", "get", "list", "delete"} {
		if _, err := pick(h, func(k string) string { return env[k] }); err != nil {
			t.Errorf("pick(%s): %v", h, err)
		}
	}
	if _, err := pick("update", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "want create") {
		t.Errorf("pick(update): %v", err)
	}
	if _, err := pick("get", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("pick without REDIS_URL: %v", err)
	}
}
