package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStreamsOneLinePerItem(t *testing.T) {
	rec := httptest.NewRecorder()
	handler(rec, httptest.NewRequest(http.MethodGet, "/?items=3", nil))
	want := "{\"item\":1,\"of\":3}\n{\"item\":2,\"of\":3}\n{\"item\":3,\"of\":3}\n{\"done\":true}\n"
	if rec.Code != 200 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	if !rec.Flushed {
		t.Fatal("the handler never flushed: nothing would reach the client before the end")
	}
}

func TestRejectsBadItems(t *testing.T) {
	for _, q := range []string{"0", "-1", "x", "1001"} {
		rec := httptest.NewRecorder()
		handler(rec, httptest.NewRequest(http.MethodGet, "/?items="+q, nil))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("items=%s: %d", q, rec.Code)
		}
	}
}
