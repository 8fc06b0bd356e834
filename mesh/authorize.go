package mesh

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// AuthorizeAgent is the part of the Consul agent API an Authorizer uses
// (*api.Agent).
type AuthorizeAgent interface {
	ConnectAuthorize(auth *api.AgentAuthorizeParams) (*api.AgentAuthorize, error)
}

var _ AuthorizeAgent = (*api.Agent)(nil)

// ErrDenied is wrapped by every refusal from intentions (see DeniedError).
var ErrDenied = errors.New("mesh: not authorized by consul intentions")

// DeniedError is a refusal with the agent's reason.
type DeniedError struct {
	Target string
	Client string
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("mesh: %s may not call %s: %s", e.Client, e.Target, e.Reason)
}

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Authorizer decides with Consul's intentions whether a mesh peer may call a
// destination service. It keeps no cache of its own; see the package doc.
type Authorizer struct {
	agent AuthorizeAgent
}

// NewAuthorizer returns an Authorizer asking agent.
func NewAuthorizer(agent AuthorizeAgent) *Authorizer { return &Authorizer{agent: agent} }

// Authorize returns nil when the agent allows peer to call target, a
// *DeniedError when an intention (or the default policy) denies it, and any
// other error when the agent could not answer; callers must treat every
// non-nil error as a refusal.
func (a *Authorizer) Authorize(ctx context.Context, target string, peer Peer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// ConnectAuthorize takes no context; the agent answers from its local
	// cache, so the call is short.
	res, err := a.agent.ConnectAuthorize(&api.AgentAuthorizeParams{
		Target:           target,
		ClientCertURI:    peer.URI,
		ClientCertSerial: peer.Serial,
	})
	if err != nil {
		return fmt.Errorf("mesh: asking the consul agent to authorize %s → %s: %w", peer.URI, target, err)
	}
	if !res.Authorized {
		return &DeniedError{Target: target, Client: peer.URI, Reason: res.Reason}
	}
	return nil
}
