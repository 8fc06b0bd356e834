// Command http-api is a small JSON API behind a function URL: it routes on
// method and path, reads and writes JSON, and reads and sets cookies.
//
//	GET    /notes        list the notes
//	POST   /notes        {"text":"…"} → 201 {"id":"1","text":"…"}, sets the last_note cookie
//	GET    /notes/{id}   one note, or 404
//	DELETE /notes/{id}   204, or 404
//	GET    /me           the session cookie's value, or 401
//
// The notes live in the execution environment's memory, so they are lost
// when it stops and not shared between environments: replace store with
// your database.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type note struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// store keeps notes in memory.
type store struct {
	mu    sync.Mutex
	next  int
	notes map[string]note
}

func newStore() *store { return &store{notes: map[string]note{}} }

func (s *store) add(text string) note {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	n := note{ID: strconv.Itoa(s.next), Text: text}
	s.notes[n.ID] = n
	return n
}

func (s *store) get(id string) (note, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.notes[id]
	return n, ok
}

func (s *store) remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.notes[id]
	delete(s.notes, id)
	return ok
}

func (s *store) list() []note {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]note, 0, len(s.notes))
	for _, n := range s.notes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].ID)
		b, _ := strconv.Atoi(out[j].ID)
		return a < b
	})
	return out
}

// api is the function: one method per route.
type api struct{ store *store }

type response = events.LambdaFunctionURLResponse

// reply answers with v as JSON.
func reply(status int, v any) response {
	body, _ := json.Marshal(v)
	return response{
		StatusCode: status,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(body),
	}
}

func errorReply(status int, msg string) response {
	return reply(status, map[string]string{"error": msg})
}

// cookie returns the value of the request cookie called name. Function
// URLs pass cookies in the event's cookies list, one "name=value" each.
func cookie(req events.LambdaFunctionURLRequest, name string) (string, bool) {
	for _, c := range req.Cookies {
		k, v, _ := strings.Cut(c, "=")
		if strings.TrimSpace(k) == name {
			return v, true
		}
	}
	return "", false
}

// body returns the request body, decoding it when the URL sent it base64.
func body(req events.LambdaFunctionURLRequest) ([]byte, error) {
	if req.IsBase64Encoded {
		return base64.StdEncoding.DecodeString(req.Body)
	}
	return []byte(req.Body), nil
}

func (a *api) handle(_ context.Context, req events.LambdaFunctionURLRequest) (response, error) {
	method := req.RequestContext.HTTP.Method
	parts := strings.Split(strings.Trim(req.RawPath, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "notes":
		switch method {
		case http.MethodGet:
			return reply(http.StatusOK, a.store.list()), nil
		case http.MethodPost:
			return a.create(req), nil
		}
		return methodNotAllowed("GET, POST"), nil
	case len(parts) == 2 && parts[0] == "notes":
		switch method {
		case http.MethodGet:
			if n, ok := a.store.get(parts[1]); ok {
				return reply(http.StatusOK, n), nil
			}
			return errorReply(http.StatusNotFound, "no note "+parts[1]), nil
		case http.MethodDelete:
			if a.store.remove(parts[1]) {
				return response{StatusCode: http.StatusNoContent}, nil
			}
			return errorReply(http.StatusNotFound, "no note "+parts[1]), nil
		}
		return methodNotAllowed("GET, DELETE"), nil
	case len(parts) == 1 && parts[0] == "me":
		if method != http.MethodGet {
			return methodNotAllowed("GET"), nil
		}
		if s, ok := cookie(req, "session"); ok && s != "" {
			return reply(http.StatusOK, map[string]string{"session": s}), nil
		}
		return errorReply(http.StatusUnauthorized, "no session cookie"), nil
	}
	return errorReply(http.StatusNotFound, "no route for "+method+" "+req.RawPath), nil
}

func (a *api) create(req events.LambdaFunctionURLRequest) response {
	b, err := body(req)
	if err != nil {
		return errorReply(http.StatusBadRequest, "body is not valid base64")
	}
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return errorReply(http.StatusBadRequest, "body is not JSON: "+err.Error())
	}
	if strings.TrimSpace(in.Text) == "" {
		return errorReply(http.StatusBadRequest, "text is required")
	}
	n := a.store.add(in.Text)
	resp := reply(http.StatusCreated, n)
	resp.Headers["location"] = "/notes/" + n.ID
	resp.Cookies = []string{(&http.Cookie{Name: "last_note", Value: n.ID, Path: "/",
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}).String()}
	return resp
}

func methodNotAllowed(allow string) response {
	r := errorReply(http.StatusMethodNotAllowed, "method not allowed")
	r.Headers["allow"] = allow
	return r
}

func main() {
	a := &api{store: newStore()}
	lambda.Start(a.handle)
}
