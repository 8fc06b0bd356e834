package artifacts

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Path prefixes every artifact URL: <Path><sha256>.zip. It is what
// jobs.Options.ArtifactBaseURL points at (<gateway>/nimbus/v1/artifacts).
const Path = "/nimbus/v1/artifacts/"

// Authorizer checks an upload; body is the complete request body (SigV4
// hashes it). nil allows every upload (dev mode without keys).
type Authorizer func(r *http.Request, body []byte) error

// Handler serves uploads and downloads under Path.
type Handler struct {
	store *Store
	auth  Authorizer
}

// NewHandler returns the HTTP face of s.
func NewHandler(s *Store, auth Authorizer) *Handler {
	return &Handler{store: s, auth: auth}
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Code: code, Message: err.Error()})
}

func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "NotFound", err)
	case errors.Is(err, ErrBadDigest):
		writeError(w, http.StatusBadRequest, "BadDigest", err)
	case errors.Is(err, ErrChecksumMismatch):
		writeError(w, http.StatusBadRequest, "ChecksumMismatch", err)
	case errors.Is(err, ErrTruncated):
		writeError(w, http.StatusBadRequest, "IncompleteBody", err)
	case errors.Is(err, ErrUnsafeEntry):
		writeError(w, http.StatusBadRequest, "UnsafeBundle", err)
	case errors.Is(err, ErrCorrupt):
		writeError(w, http.StatusBadRequest, "CorruptBundle", err)
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "BundleTooLarge", err)
	case errors.Is(err, ErrStoredMismatch):
		// The store, not the request, is at fault: nothing is served.
		writeError(w, http.StatusBadGateway, "StoredBundleMismatch", err)
	default:
		writeError(w, http.StatusInternalServerError, "InternalError", err)
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Path)
	digest, zipExt := strings.CutSuffix(name, ".zip")
	if !ok || !zipExt || !ValidDigest(digest) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Errorf("no artifact at %s (want %s<sha256 hex>.zip)", r.URL.Path, Path))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.download(w, r, digest)
	case http.MethodPut:
		h.upload(w, r, digest)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Errorf("method %s not allowed", r.Method))
	}
}

// UploadResult is the JSON body of a successful upload.
type UploadResult struct {
	Info
	// Created is false when the bundle was already stored.
	Created bool `json:"created"`
}

func (h *Handler) upload(w http.ResponseWriter, r *http.Request, digest string) {
	if h.auth != nil && r.Header.Get("Authorization") == "" {
		// Refuse before reading up to MaxBundleBytes of an anonymous body.
		writeError(w, http.StatusForbidden, "AccessDenied", errors.New("upload not authorised: no Authorization header"))
		return
	}
	limit := h.store.MaxBundleBytes()
	if r.ContentLength > limit {
		storeError(w, fmt.Errorf("bundle %s: %d bytes declared, at most %d allowed: %w", digest, r.ContentLength, limit, ErrTooLarge))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		// A client that hangs up mid-body: the body is incomplete.
		storeError(w, fmt.Errorf("bundle %s: reading the body: %w: %v", digest, ErrTruncated, err))
		return
	case int64(len(body)) > limit:
		storeError(w, fmt.Errorf("bundle %s: more than %d bytes: %w", digest, limit, ErrTooLarge))
		return
	case r.ContentLength >= 0 && int64(len(body)) != r.ContentLength:
		storeError(w, fmt.Errorf("bundle %s: %d of %d bytes received: %w", digest, len(body), r.ContentLength, ErrTruncated))
		return
	}
	if h.auth != nil {
		if err := h.auth(r, body); err != nil {
			writeError(w, http.StatusForbidden, "AccessDenied", fmt.Errorf("upload not authorised: %w", err))
			return
		}
	}
	info, created, err := h.store.Put(r.Context(), digest, body)
	if err != nil {
		storeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	_ = json.NewEncoder(w).Encode(UploadResult{Info: info, Created: created})
}

// download serves a bundle only after checking it against its address:
// GET reads it in full and verifies its sha256 before the first byte goes
// out (Store.Open); HEAD and a matching If-None-Match, which send no
// content, check the digest the object store recorded (Store.Verify).
func (h *Handler) download(w http.ResponseWriter, r *http.Request, digest string) {
	inm := r.Header.Get("If-None-Match")
	notModified := inm != "" && strings.Contains(inm, `"`+digest+`"`)
	var (
		body *Bundle
		info Info
		err  error
	)
	if r.Method == http.MethodHead || notModified {
		info, err = h.store.Verify(r.Context(), digest)
	} else {
		body, info, err = h.store.Open(r.Context(), digest)
	}
	if err != nil {
		storeError(w, err)
		return
	}
	if body != nil {
		defer body.Close()
	}
	sum, _ := hex.DecodeString(digest)
	hd := w.Header()
	hd.Set("Content-Type", "application/zip")
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("ETag", `"`+digest+`"`)
	hd.Set(HeaderSHA256, digest)
	hd.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	hd.Set("Last-Modified", info.Stored.UTC().Format(http.TimeFormat))
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	start, length, partial, ok := parseRange(r.Header.Get("Range"), info.Size)
	if !ok {
		hd.Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
		writeError(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", fmt.Errorf("range %q outside 0–%d", r.Header.Get("Range"), info.Size))
		return
	}
	hd.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, info.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if body == nil {
		return
	}
	if _, err := body.Seek(start, io.SeekStart); err != nil {
		h.store.logger.Error("seeking to range start", "sha256", digest, "error", err)
		return
	}
	if _, err := io.CopyN(w, body, length); err != nil {
		// Headers are sent: the short body tells the client (Content-Length).
		h.store.logger.Error("sending bundle", "sha256", digest, "error", err)
	}
}

// parseRange reads a single "bytes=" range (first-last, first- or -suffix)
// against size. A missing, multi-part or non-bytes header means the whole
// body (RFC 9110 lets a server ignore Range); ok is false only for a range
// that cannot be satisfied.
func parseRange(h string, size int64) (start, length int64, partial, ok bool) {
	spec, isBytes := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if h == "" || !isBytes || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, true
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, true
		}
		if n == 0 || size == 0 {
			return 0, 0, false, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, false, true
	}
	if a >= size {
		return 0, 0, false, false
	}
	b := size - 1
	if last != "" {
		v, err := strconv.ParseInt(last, 10, 64)
		if err != nil || v < a {
			return 0, size, false, true
		}
		b = min(v, size-1)
	}
	return a, b - a + 1, true, true
}
