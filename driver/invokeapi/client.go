package invokeapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Request is one invocation sent to an instance.
type Request struct {
	// Payload is the event. Nil means an empty body.
	Payload []byte
	// ContentType of the event; empty means application/json.
	ContentType     string
	RequestID       string
	InvokedARN      string
	ClientContext   string // base64, as received by the Invoke API
	CognitoIdentity string
	TraceID         string
	TenantID        string
	// LogTail asks for the log tail (X-Amz-Log-Result).
	LogTail bool
	// Streaming asks for the body as the function writes it.
	Streaming bool
	// Deadline, when set, shortens the invocation's deadline.
	Deadline time.Time
}

// Response is a completed invocation (the function succeeded or failed). The
// caller must close Body. Report fields of a streamed response are only
// complete once Body has been read to EOF.
type Response struct {
	ContentType   string
	FunctionError string // "Unhandled" or ""
	// ImageFailure is Lambda's reason code when the function could not run
	// because the instance could not pull its image (HeaderImageFailure).
	ImageFailure    string
	LogResult       string // base64 tail, when asked for
	ExecutedVersion string
	RequestID       string
	Body            io.ReadCloser
	resp            *http.Response
}

// Report is the accounting of one invocation, as the REPORT line gives it.
type Report struct {
	Duration      time.Duration
	BilledMs      int64
	InitDuration  time.Duration // zero when the environment was warm
	MemoryMB      int64         // the function's memory size (0 from an older instance)
	MaxMemoryMB   int64
	ColdStart     bool
	StreamErrType string // a mid-stream error's type (streamed responses only)
	StreamErrBody string // its base64 body
	// LogResult is the base64 log tail when it was asked for; a streamed
	// response carries it as a trailer (Response.LogResult is then empty).
	LogResult string
}

// Report returns the invocation's accounting from headers, or from trailers
// for a streamed response once Body reached EOF.
func (r *Response) Report() Report {
	get := func(k string) string {
		if v := r.resp.Header.Get(k); v != "" {
			return v
		}
		return r.resp.Trailer.Get(k)
	}
	ms := func(k string) time.Duration {
		f, _ := strconv.ParseFloat(get(k), 64)
		return time.Duration(f * float64(time.Millisecond))
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(get(k), 10, 64); return v }
	return Report{
		Duration:      ms(HeaderDurationMs),
		BilledMs:      n(HeaderBilledMs),
		InitDuration:  ms(HeaderInitMs),
		MemoryMB:      n(HeaderMemoryMB),
		MaxMemoryMB:   n(HeaderMaxMemoryMB),
		ColdStart:     get(HeaderColdStart) == "true",
		StreamErrType: r.resp.Trailer.Get(TrailerErrorType),
		StreamErrBody: r.resp.Trailer.Get(TrailerErrorBody),
		LogResult:     get(HeaderLogResult),
	}
}

// Client calls instances' invoke endpoints.
type Client struct {
	// HTTP is the client used; nil means a dedicated client with keep-alive
	// pools sized for many concurrent invocations and no overall timeout
	// (invocations are bounded by the function timeout and ctx).
	HTTP *http.Client
	// Secret is sent as the bearer token.
	Secret string
	// TLS, when set, calls instances over HTTPS with this config (a mesh
	// client config: the caller's leaf certificate, the instance's
	// identity verified). The client then keeps its own keep-alive pool
	// (NewTransport with TLS), so a TLS handshake is paid once per pooled
	// connection, not per call; HTTP must be nil.
	TLS *tls.Config

	tlsOnce sync.Once
	tlsHTTP *http.Client
}

// NewTransport returns the transport gateways should share for instance calls:
// loopback/LAN keep-alive, no proxy, no compression.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

var defaultHTTP = &http.Client{Transport: NewTransport()}

func (c *Client) http() *http.Client {
	if c.TLS != nil {
		c.tlsOnce.Do(func() {
			t := NewTransport()
			t.TLSClientConfig = c.TLS
			c.tlsHTTP = &http.Client{Transport: t}
		})
		return c.tlsHTTP
	}
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// send runs req. A client that is only a transport (no timeout, cookie jar
// or redirect policy, as the default, TLS and router clients are) goes
// straight to its RoundTrip, as httputil.ReverseProxy does: http.Client.Do
// would copy the headers for redirects and wrap the call in its deadline
// machinery on every invoke, for nothing, since instances never redirect.
// A 3xx is then an error answer like any other non-200.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	hc := c.http()
	if hc.Transport != nil && hc.Timeout == 0 && hc.Jar == nil && hc.CheckRedirect == nil {
		return hc.Transport.RoundTrip(req)
	}
	return hc.Do(req)
}

// errTLSAndHTTP refuses a Client whose TLS config its HTTP client would ignore.
var errTLSAndHTTP = errors.New("invoke client: set TLS or HTTP, not both")

// url is the instance endpoint's URL for path.
func (c *Client) url(addr, path string) (string, error) {
	if c.TLS != nil {
		if c.HTTP != nil {
			return "", errTLSAndHTTP
		}
		return "https://" + addr + path, nil
	}
	return "http://" + addr + path, nil
}

// Invoke runs one invocation on the instance at addr (host:port). A platform
// refusal is returned as *Error (errors.Is(err, ErrNoIdleEnvironment) etc.).
func (c *Client) Invoke(ctx context.Context, addr string, in *Request) (*Response, error) {
	u, err := c.url(addr, PathInvoke)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(in.Payload))
	if err != nil {
		return nil, fmt.Errorf("building invoke request: %w", err)
	}
	h := hreq.Header
	c.auth(h)
	ct := in.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderRequestID, in.RequestID)
	set(HeaderInvokedARN, in.InvokedARN)
	set(HeaderClientContext, in.ClientContext)
	set(HeaderCognitoIdentity, in.CognitoIdentity)
	set(HeaderTraceID, in.TraceID)
	set(HeaderTenantID, in.TenantID)
	if in.LogTail {
		h.Set(HeaderLogType, LogTypeTail)
	}
	if in.Streaming {
		h.Set(HeaderResponseMode, ResponseModeStreaming)
	}
	if !in.Deadline.IsZero() {
		h.Set(HeaderDeadline, strconv.FormatInt(in.Deadline.UnixMilli(), 10))
	}
	resp, err := c.send(hreq)
	if err != nil {
		return nil, fmt.Errorf("invoking instance %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return &Response{
		ContentType:     resp.Header.Get("Content-Type"),
		FunctionError:   resp.Header.Get(HeaderFunctionError),
		ImageFailure:    resp.Header.Get(HeaderImageFailure),
		LogResult:       resp.Header.Get(HeaderLogResult),
		ExecutedVersion: resp.Header.Get(HeaderExecutedVersion),
		RequestID:       resp.Header.Get(HeaderRequestID),
		Body:            resp.Body,
		resp:            resp,
	}, nil
}

// Status reads the instance's environment accounting.
func (c *Client) Status(ctx context.Context, addr string) (*Status, error) {
	var st Status
	if err := c.doJSON(ctx, http.MethodGet, addr, PathStatus, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Warm asks the instance to initialise at least n environments.
func (c *Client) Warm(ctx context.Context, addr string, n int) (*Status, error) {
	var st Status
	if err := c.doJSON(ctx, http.MethodPost, addr, PathWarm, &Warm{Environments: n}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (c *Client) auth(h http.Header) {
	if c.Secret != "" {
		h.Set(HeaderAuthorization, "Bearer "+c.Secret)
	}
}

func (c *Client) doJSON(ctx context.Context, method, addr, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u, err := c.url(addr, path)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	c.auth(hreq.Header)
	resp, err := c.send(hreq)
	if err != nil {
		return fmt.Errorf("calling instance %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding %s from %s: %w", path, addr, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	e := &Error{}
	if json.Unmarshal(b, e) != nil || e.Code == "" {
		e.Code = Code(resp.Header.Get(HeaderErrorCode))
		if e.Code == "" {
			e.Code = CodeInternal
		}
		e.Message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return e
}
