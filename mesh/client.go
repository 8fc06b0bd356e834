package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// Resolver finds a service's Connect-capable instances (*api.Health:
// /v1/health/connect/<service>, which lists Connect-native services and the
// sidecar proxies of the others).
type Resolver interface {
	Connect(service, tag string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
}

var _ Resolver = (*api.Health)(nil)

// ErrNoInstances is returned by Dial when the target has no passing
// Connect-capable instance.
var ErrNoInstances = errors.New("mesh: no passing connect-capable instance")

// Dial connects to a passing Connect-capable instance of target as src's
// service, completes the mutual TLS handshake (sending target's SNI, with
// src's leaf) and checks that the server is target. It tries the instances
// in random order until one answers.
func Dial(ctx context.Context, src *Source, resolver Resolver, target string, nextProtos ...string) (*tls.Conn, error) {
	entries, _, err := resolver.Connect(target, "", true, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("mesh: resolving %s: %w", target, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w of %s", ErrNoInstances, target)
	}
	cfg := src.ClientTLSConfig(target)
	cfg.NextProtos = nextProtos
	var errs []error
	for _, i := range rand.Perm(len(entries)) {
		addr := entryAddr(entries[i])
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.(*tls.Conn), nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("mesh: dialing %s: %w", target, errors.Join(errs...))
}

func entryAddr(e *api.ServiceEntry) string {
	host := e.Service.Address
	if host == "" {
		host = e.Node.Address
	}
	return net.JoinHostPort(host, strconv.Itoa(e.Service.Port))
}

// HTTPClient is an HTTP client whose every connection is a mesh connection
// to target made by Dial; the URL's host is ignored for dialing (use
// "https://<target>/path"). Connections are pooled, so the handshake is paid
// once per connection, not per request. The client speaks HTTP/1.1.
func HTTPClient(src *Source, resolver Resolver, target string) *http.Client {
	t := &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return Dial(ctx, src, resolver, target, "http/1.1")
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: t}
}
