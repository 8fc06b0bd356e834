package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// maxBody bounds a request body (function URLs allow 6 MB; items are small).
const maxBody = 64 << 10

// API holds the four handlers. Each function runs one of them: the spec's
// handler attribute (_HANDLER) chooses which.
type API struct {
	Store Store
	Now   func() time.Time
	NewID func() string
}

func newAPI(s Store) *API {
	return &API{Store: s, Now: time.Now, NewID: randomID}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

type (
	request  = events.LambdaFunctionURLRequest
	response = events.LambdaFunctionURLResponse
)

// Create is POST /items with {"name": "...", "data": {...}}: 201 and the item.
func (a *API) Create(ctx context.Context, req request) (response, error) {
	if r, ok := method(req, http.MethodPost); !ok {
		return r, nil
	}
	body := req.Body
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return problem(http.StatusBadRequest, "the body is not valid base64"), nil
		}
		body = string(b)
	}
	if len(body) > maxBody {
		return problem(http.StatusRequestEntityTooLarge, "the body is larger than 64 KiB"), nil
	}
	var in struct {
		Name string          `json:"name"`
		Data json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return problem(http.StatusBadRequest, "want a JSON object {\"name\": \"…\", \"data\": …}: "+err.Error()), nil
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return problem(http.StatusBadRequest, "name must be 1-200 characters"), nil
	}
	it := Item{ID: a.NewID(), Name: in.Name, Data: in.Data, Created: a.Now().UTC()}
	if err := a.Store.Put(ctx, it); err != nil {
		return failed("storing the item", err), nil
	}
	r := reply(http.StatusCreated, it)
	r.Headers["Location"] = "?id=" + it.ID
	return r, nil
}

// Get is GET ?id=ID: 200 and the item, or 404.
func (a *API) Get(ctx context.Context, req request) (response, error) {
	if r, ok := method(req, http.MethodGet); !ok {
		return r, nil
	}
	id, r, ok := itemID(req)
	if !ok {
		return r, nil
	}
	it, found, err := a.Store.Get(ctx, id)
	if err != nil {
		return failed("reading the item", err), nil
	}
	if !found {
		return problem(http.StatusNotFound, "no item "+id), nil
	}
	return reply(http.StatusOK, it), nil
}

// List is GET: 200 and {"items": [...]}, oldest first.
func (a *API) List(ctx context.Context, req request) (response, error) {
	if r, ok := method(req, http.MethodGet); !ok {
		return r, nil
	}
	items, err := a.Store.List(ctx)
	if err != nil {
		return failed("listing items", err), nil
	}
	return reply(http.StatusOK, map[string]any{"items": items, "count": len(items)}), nil
}

// Delete is DELETE ?id=ID: 204, or 404 when there is no such item.
func (a *API) Delete(ctx context.Context, req request) (response, error) {
	if r, ok := method(req, http.MethodDelete); !ok {
		return r, nil
	}
	id, r, ok := itemID(req)
	if !ok {
		return r, nil
	}
	deleted, err := a.Store.Delete(ctx, id)
	if err != nil {
		return failed("deleting the item", err), nil
	}
	if !deleted {
		return problem(http.StatusNotFound, "no item "+id), nil
	}
	return response{StatusCode: http.StatusNoContent}, nil
}

// method answers 405 unless the request uses want. A function URL event
// without an HTTP method (a direct invoke with {}) counts as want, so
// `nimbus invoke` works for the read functions.
func method(req request, want string) (response, bool) {
	got := req.RequestContext.HTTP.Method
	if got == "" || got == want {
		return response{}, true
	}
	r := problem(http.StatusMethodNotAllowed, "use "+want)
	r.Headers["Allow"] = want
	return r, false
}

// itemID reads the id from ?id= or the last path segment (/items/ID).
func itemID(req request) (string, response, bool) {
	id := req.QueryStringParameters["id"]
	if id == "" {
		p := strings.Trim(req.RawPath, "/")
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			p = p[i+1:]
		}
		if p != "items" {
			id = p
		}
	}
	if id == "" || len(id) > 64 {
		return "", problem(http.StatusBadRequest, "give the item's id: ?id=ID"), false
	}
	return id, response{}, true
}

func reply(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return failed("encoding the answer", err)
	}
	return response{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

func problem(status int, msg string) response {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return response{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

// failed logs a storage error (to the function's log) and answers 503
// without its details.
func failed(what string, err error) response {
	log.Printf("%s: %v", what, err)
	return problem(http.StatusServiceUnavailable, what+" failed; try again")
}
