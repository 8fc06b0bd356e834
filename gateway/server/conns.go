package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
)

// limitListener holds at most max client connections. A connection
// accepted over the cap is closed at once, so a flood costs one accept and
// one close per connection instead of a goroutine, buffers and a file
// descriptor for as long as the client cares to hold it.
//
// The gateway's other listeners (mesh, TLS) share one cap with it (share).
type limitListener struct {
	net.Listener
	*connLimit
}

// connLimit is the cap and count the gateway's listeners share.
type connLimit struct {
	max     int64
	open    atomic.Int64
	refused prometheus.Counter
}

func newLimitListener(ln net.Listener, max int, reg prometheus.Registerer) *limitListener {
	l := &limitListener{Listener: ln, connLimit: &connLimit{max: int64(max),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nimbus_http_connections_refused_total",
			Help: "Client connections closed on accept because max_connections were open.",
		})}}
	reg.MustRegister(l.refused, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nimbus_http_connections",
		Help: "Client connections open (bounded by max_connections).",
	}, func() float64 { return float64(l.open.Load()) }))
	return l
}

// Accept returns the next connection within the cap, closing every one
// over it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refused.Inc()
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

// share caps ln with the same count and limit as l.
func (l *limitListener) share(ln net.Listener) *limitListener {
	return &limitListener{Listener: ln, connLimit: l.connLimit}
}

// Open is the number of connections held.
func (l *limitListener) Open() int { return int(l.open.Load()) }

// countedConn gives its slot back on the first Close.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// bodyDeadline bounds how long a request body may take to arrive. The
// connection's read deadline is set when the handler starts and cleared as
// soon as the body has been read to its end, so the deadline never covers
// the response: net/http's background read (which watches for the client
// going away while the handler runs) would otherwise hit it and cancel a
// long invocation or a streamed answer. A handler that never reads the
// body leaves the deadline in place, which then bounds net/http's discard
// of the unread body after the handler returns.
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			d := s.cfg.ReadBodyTimeoutD
			if strings.HasPrefix(r.URL.Path, artifacts.Path) && r.Method != http.MethodGet && r.Method != http.MethodHead {
				d = s.cfg.UploadTimeoutD
			}
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
			} else if !errors.Is(err, http.ErrNotSupported) {
				s.logger.Debug("setting the request body deadline", "error", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body reached its end.
type deadlineBody struct {
	io.ReadCloser
	clear func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.clear)
	}
	return n, err
}

// net/http answers a request it cannot parse (a path such as /%zz, a
// missing or malformed Host header, headers over max_header_bytes, an
// unknown transfer encoding) itself, before any handler runs, with a plain
// text error written straight to the connection in one Write: a status
// line, exactly these headers, and a text body. Those bytes are recognised
// here and replaced with Lambda's JSON error, so every answer of the
// gateway has the shape clients parse. A handler's answer never matches:
// net/http adds Date and Content-Length to it.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// Write passes p through, except net/http's plain text protocol errors.
func (c *countedConn) Write(p []byte) (int, error) {
	if len(p) < 1024 && bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		if b, ok := lambdaProtocolError(p); ok {
			if _, err := c.Conn.Write(b); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// lambdaProtocolError turns one of net/http's canned errors into the
// catalogue's: malformed requests are InvalidParameterValueException (400),
// oversized headers RequestEntityTooLargeException (413), an unsupported
// transfer encoding InvalidRequestContentException (400).
func lambdaProtocolError(p []byte) ([]byte, bool) {
	statusLine, text, ok := bytes.Cut(p, []byte(netHTTPErrorHeaders))
	if !ok || bytes.Contains(statusLine, []byte("\r\n")) {
		return nil, false
	}
	status, err := strconv.Atoi(string(statusLine[len("HTTP/1.1 "):min(len(statusLine), len("HTTP/1.1 200"))]))
	if err != nil {
		return nil, false
	}
	var code, msg string
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		code, msg = api.CodeRequestEntityTooLarge, "The request's headers are larger than the gateway accepts (max_header_bytes)."
	case status == http.StatusNotImplemented:
		code, msg = api.CodeInvalidRequestContent, "The request uses an unsupported transfer encoding."
	case status >= 400 && status < 500:
		code, msg = api.CodeInvalidParameterValue, "The request could not be parsed (a malformed request line, path or Host header): "+string(text)
	default:
		return nil, false
	}
	rw := &rawResponse{header: http.Header{}}
	api.WriteError(rw, uuid.NewString(), code, msg)
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\n", rw.status, http.StatusText(rw.status))
	rw.header.Set("Content-Length", strconv.Itoa(rw.body.Len()))
	rw.header.Set("Connection", "close")
	_ = rw.header.Write(&out)
	out.WriteString("\r\n")
	out.Write(rw.body.Bytes())
	return out.Bytes(), true
}

// rawResponse records one answer in memory.
type rawResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *rawResponse) Header() http.Header { return r.header }
func (r *rawResponse) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *rawResponse) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
