package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/specs"
)

// URL config values.
const (
	AuthNone             = "NONE"
	AuthIAM              = "AWS_IAM"
	InvokeModeBuffered   = "BUFFERED"
	InvokeModeStream     = "RESPONSE_STREAM"
	httpIntegrationCT    = "application/vnd.awslambda.http-integration-response"
	maxStreamPreludeSize = 1 << 20
)

// urlEvent is payload format 2.0 as function URLs send it
// (events.LambdaFunctionURLRequest's JSON names).
type urlEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        urlRequestContext `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type urlRequestContext struct {
	AccountID    string         `json:"accountId"`
	APIID        string         `json:"apiId"`
	Authorizer   *urlAuthorizer `json:"authorizer,omitempty"`
	DomainName   string         `json:"domainName"`
	DomainPrefix string         `json:"domainPrefix"`
	HTTP         urlHTTP        `json:"http"`
	RequestID    string         `json:"requestId"`
	RouteKey     string         `json:"routeKey"`
	Stage        string         `json:"stage"`
	Time         string         `json:"time"`
	TimeEpoch    int64          `json:"timeEpoch"`
}

type urlAuthorizer struct {
	IAM *urlIAM `json:"iam"`
}

type urlIAM struct {
	AccessKey       string  `json:"accessKey"`
	AccountID       string  `json:"accountId"`
	CallerID        string  `json:"callerId"`
	CognitoIdentity *string `json:"cognitoIdentity"`
	PrincipalOrgID  *string `json:"principalOrgId"`
	UserARN         string  `json:"userArn"`
	UserID          string  `json:"userId"`
}

type urlHTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// urlResponse is the structured response a function may return.
type urlResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	Cookies         []string          `json:"cookies"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// urlError answers a function-URL-level error: JSON {"Message": …}, as the
// URL front end does.
func urlError(w http.ResponseWriter, requestID string, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerRequestID, requestID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg})
}

// serveURL serves one function URL request; rawPath is the path the
// function sees (escaped form).
func (a *API) serveURL(w http.ResponseWriter, r *http.Request, name, rawPath string) {
	requestID := uuid.NewString()
	fn, err := a.catalog.Function(r.Context(), name)
	if errors.Is(err, catalog.ErrFunctionNotFound) {
		// Host names are case-insensitive; function names are not.
		fn, err = a.functionFold(r.Context(), name)
	}
	if err != nil || fn.URL() == nil {
		if err != nil && !errors.Is(err, catalog.ErrFunctionNotFound) {
			urlError(w, requestID, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		urlError(w, requestID, http.StatusNotFound, "Function URL not found")
		return
	}
	cfg := fn.URL()
	cors := cfg.CORS
	if cors != nil && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		preflight(w, r, cors)
		return
	}
	if cors != nil {
		// Configured CORS headers are set now and again after the function's
		// headers, so they win on conflict.
		applyCORS(w.Header(), r, cors)
	}
	body, apiErr := readBody(r, "InvokeFunctionUrl")
	if apiErr != nil {
		urlError(w, requestID, apiErr.kind().Status, apiErr.Message)
		return
	}
	var ident *sigv4.Identity
	if cfg.Auth == AuthIAM {
		id, e := a.authenticateSignature(r, body)
		if e != nil {
			a.logger.Debug("function URL auth refused", "function", name, "request_id", requestID, "error", e.Message)
			urlError(w, requestID, http.StatusForbidden, "Forbidden")
			return
		}
		ident = id
	}
	qualifier := cfg.Qualifier
	if qualifier == catalog.Latest {
		qualifier = ""
	}
	res, err := fn.Resolve(qualifier, nil)
	if err != nil {
		urlError(w, requestID, http.StatusNotFound, "Function URL not found")
		return
	}
	ev := a.urlEvent(r, name, rawPath, body, requestID, ident, cfg.Auth == AuthIAM)
	payload, err := json.Marshal(ev)
	if err != nil {
		urlError(w, requestID, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	t := target(fn, res)
	streaming := cfg.InvokeMode == InvokeModeStream
	resp, err := a.invoker.Invoke(r.Context(), t, &invokeapi.Request{
		Payload:     payload,
		ContentType: "application/json",
		RequestID:   requestID,
		InvokedARN:  a.functionARN(fn.Name, cfg.Qualifier),
		TraceID:     ev.Headers["x-amzn-trace-id"],
		Streaming:   streaming,
	})
	if err != nil {
		e := a.classify(t, err)
		if e == nil {
			return
		}
		if e.Code != CodeTooManyRequests {
			a.logger.Warn("function URL invocation failed", "function", t.Function, "version", t.Version, "request_id", requestID, "error", err)
		}
		setRetryAfter(w.Header(), e)
		urlError(w, requestID, e.kind().Status, e.Message)
		return
	}
	defer resp.Body.Close()
	w.Header().Set(headerRequestID, requestID)
	if resp.FunctionError != "" {
		_, _ = io.Copy(io.Discard, resp.Body)
		a.record(t, resp)
		urlError(w, requestID, http.StatusBadGateway, "Internal Server Error")
		return
	}
	if streaming {
		a.writeStream(w, r, resp, cors, t.Function, requestID)
	} else {
		a.writeBuffered(w, r, resp, cors, t.Function, requestID)
	}
	a.record(t, resp)
}

// functionFold finds a function whose name matches case-insensitively.
func (a *API) functionFold(ctx context.Context, name string) (*catalog.Function, error) {
	fns, err := a.catalog.Functions(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range fns {
		if strings.EqualFold(f.Name, name) {
			return f, nil
		}
	}
	return nil, fmt.Errorf("function %s: %w", name, catalog.ErrFunctionNotFound)
}

// urlEvent builds the payload format 2.0 event.
func (a *API) urlEvent(r *http.Request, name, rawPath string, body []byte, requestID string, ident *sigv4.Identity, iam bool) *urlEvent {
	now := timeNow().UTC()
	host := r.Host
	domain := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		domain = h
	}
	headers := make(map[string]string, len(r.Header)+6)
	for k, vs := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	headers["host"] = host
	sourceIP := r.RemoteAddr
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = h
	}
	if prev := headers["x-forwarded-for"]; prev != "" {
		headers["x-forwarded-for"] = prev + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	proto := a.opts.Scheme
	if r.TLS != nil {
		proto = "https"
	}
	headers["x-forwarded-proto"] = proto
	port := "80"
	if proto == "https" {
		port = "443"
	}
	if _, p, err := net.SplitHostPort(host); err == nil {
		port = p
	}
	headers["x-forwarded-port"] = port
	if headers["x-amzn-trace-id"] == "" {
		headers["x-amzn-trace-id"] = newTraceID(now)
	}
	ev := &urlEvent{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        rawPath,
		RawQueryString: r.URL.RawQuery,
		Headers:        headers,
		RequestContext: urlRequestContext{
			AccountID:    a.opts.AccountID,
			APIID:        name,
			DomainName:   domain,
			DomainPrefix: name,
			HTTP: urlHTTP{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
			RequestID: requestID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: now.UnixMilli(),
		},
	}
	if c := r.Header.Values("Cookie"); len(c) > 0 {
		for _, line := range c {
			for _, part := range strings.Split(line, ";") {
				part = strings.TrimSpace(part)
				if part == "" || a.isSessionCookie(part) {
					continue
				}
				ev.Cookies = append(ev.Cookies, part)
			}
		}
		delete(headers, "cookie")
		if len(ev.Cookies) > 0 {
			headers["cookie"] = strings.Join(ev.Cookies, "; ")
		}
	}
	if r.URL.RawQuery != "" {
		if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
			ev.QueryStringParameters = make(map[string]string, len(q))
			for k, vs := range q {
				ev.QueryStringParameters[k] = strings.Join(vs, ",")
			}
		}
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	if iam && ident != nil {
		ev.RequestContext.Authorizer = &urlAuthorizer{IAM: &urlIAM{
			AccessKey: ident.AccessKeyID,
			AccountID: a.opts.AccountID,
			CallerID:  ident.AccessKeyID,
			UserARN:   "arn:aws:iam::" + a.opts.AccountID + ":user/" + ident.AccessKeyID,
			UserID:    ident.AccessKeyID,
		}}
	}
	return ev
}

// isText decides whether a request body travels as text or base64: text
// media types (text/*, JSON, XML, JavaScript, form data, YAML, GraphQL) that
// are valid UTF-8 are text; a missing content type counts as text when the
// body is valid UTF-8; everything else is binary.
func isText(contentType string, body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/yaml", mt == "application/x-yaml",
		mt == "application/graphql", mt == "application/ld+json":
		return true
	}
	return false
}

// newTraceID makes an X-Ray style trace header Root=1-<epoch hex>-<96 bits>.
func newTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + hex.EncodeToString(b[:])
}

// writeBuffered writes a BUFFERED response: a JSON object with statusCode
// is a structured response; any other JSON is sent as is with 200 and
// application/json; non-JSON output is sent as is with the function's
// content type.
func (a *API) writeBuffered(w http.ResponseWriter, r *http.Request, resp *invokeapi.Response, cors *specs.CORS, name, requestID string) {
	out, err := io.ReadAll(io.LimitReader(resp.Body, invokeapi.MaxPayload+1))
	if err == nil && len(out) > invokeapi.MaxPayload {
		err = errors.New("response larger than the 6 MB BUFFERED limit")
	}
	if err != nil {
		a.logger.Warn("reading function response", "function", name, "request_id", requestID, "error", err)
		urlError(w, requestID, http.StatusBadGateway, "Internal Server Error")
		return
	}
	h := w.Header()
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var sr urlResponse
			if err := json.Unmarshal(out, &sr); err != nil {
				urlError(w, requestID, http.StatusBadGateway, "Internal Server Error")
				return
			}
			body := []byte(sr.Body)
			if sr.IsBase64Encoded {
				if body, err = base64.StdEncoding.DecodeString(sr.Body); err != nil {
					urlError(w, requestID, http.StatusBadGateway, "Internal Server Error")
					return
				}
			}
			for k, v := range sr.Headers {
				h.Set(k, v)
			}
			for _, c := range sr.Cookies {
				h.Add("Set-Cookie", c)
			}
			if h.Get("Content-Type") == "" {
				h.Set("Content-Type", "application/json")
			}
			if cors != nil {
				applyCORS(h, r, cors)
			}
			status := sr.StatusCode
			if status < 100 || status > 999 {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			_, _ = w.Write(body)
			return
		}
	}
	if json.Valid(out) {
		h.Set("Content-Type", "application/json")
	} else if resp.ContentType != "" {
		h.Set("Content-Type", resp.ContentType)
	}
	if cors != nil {
		applyCORS(h, r, cors)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// streamPrelude is the JSON head of an http-integration-response stream.
type streamPrelude struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Cookies    []string          `json:"cookies"`
	// MultiValueHeaders is sent by some runtimes (Node.js).
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
}

// writeStream forwards a RESPONSE_STREAM response as the function writes it.
// With the http-integration-response content type the prelude (JSON, then
// eight NUL bytes) gives status, headers and cookies; otherwise the bytes go
// out with 200 and the function's content type.
func (a *API) writeStream(w http.ResponseWriter, r *http.Request, resp *invokeapi.Response, cors *specs.CORS, name, requestID string) {
	h := w.Header()
	rc := http.NewResponseController(w)
	src := bufio.NewReaderSize(resp.Body, 32*1024)
	status := http.StatusOK
	mt, _, _ := mime.ParseMediaType(resp.ContentType)
	if mt == httpIntegrationCT {
		head, err := readPrelude(src)
		if err != nil {
			a.logger.Warn("reading stream prelude", "function", name, "request_id", requestID, "error", err)
			urlError(w, requestID, http.StatusBadGateway, "Internal Server Error")
			return
		}
		var p streamPrelude
		if len(bytes.TrimSpace(head)) > 0 {
			if err := json.Unmarshal(head, &p); err != nil {
				a.logger.Warn("decoding stream prelude", "function", name, "request_id", requestID, "error", err)
				urlError(w, requestID, http.StatusBadGateway, "Internal Server Error")
				return
			}
		}
		for k, vs := range p.MultiValueHeaders {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		for k, v := range p.Headers {
			h.Set(k, v)
		}
		for _, c := range p.Cookies {
			h.Add("Set-Cookie", c)
		}
		if p.StatusCode >= 100 && p.StatusCode <= 999 {
			status = p.StatusCode
		}
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/octet-stream")
		}
	} else if resp.ContentType != "" {
		h.Set("Content-Type", resp.ContentType)
	}
	if cors != nil {
		applyCORS(h, r, cors)
	}
	w.WriteHeader(status)
	_ = rc.Flush()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			a.logger.Warn("function stream broke", "function", name, "request_id", requestID, "error", err)
			return
		}
	}
	if rep := resp.Report(); rep.StreamErrType != "" {
		a.logger.Warn("function failed mid-stream", "function", name, "request_id", requestID, "error", rep.StreamErrType)
	}
}

// readPrelude reads up to the first run of eight NUL bytes.
func readPrelude(r *bufio.Reader) ([]byte, error) {
	var head []byte
	zeros := 0
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			// No separator: the whole (short) stream was the prelude.
			return head, nil
		}
		if err != nil {
			return nil, err
		}
		if b == 0 {
			zeros++
			if zeros == 8 {
				return head, nil
			}
			continue
		}
		for ; zeros > 0; zeros-- {
			head = append(head, 0)
		}
		head = append(head, b)
		if len(head) > maxStreamPreludeSize {
			return nil, errors.New("stream prelude longer than 1 MiB without its 8-byte NUL separator")
		}
	}
}

// ServeURL serves a function URL request for the function named fn (as the
// caller wrote it: an exact name or, as in a host name, one matching
// case-insensitively), with rawPath as the path the function sees (escaped
// form). The mesh listener calls it after picking the function from the
// caller's SNI.
func (a *API) ServeURL(w http.ResponseWriter, r *http.Request, fn, rawPath string) {
	a.serveURL(w, r, fn, rawPath)
}

// URLHost returns the function a function-URL host (<fn>.<url_domain>)
// names.
func (a *API) URLHost(host string) (string, bool) { return a.urlHost(host) }

// WriteURLError answers a function-URL-level error in the URL front end's
// shape: JSON {"Message": …} with the request id header.
func WriteURLError(w http.ResponseWriter, requestID string, status int, msg string) {
	urlError(w, requestID, status, msg)
}
