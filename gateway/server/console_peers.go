package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/console"
)

// The console's history across gateways. Each gateway records only the
// invocations it served; on a shared NATS a console on any gateway asks
// the others for theirs and adds them up (console.Peers):
//
//   - Presence: every gateway puts its peer id into the key-value bucket
//     PeersBucket every peerHeartbeat; the bucket's TTL drops a gateway
//     that stopped doing so, so a reader knows how many answers to expect.
//   - Request: one NATS request on PeersSubject with an inbox every
//     gateway answers (no queue group); the reader takes answers until it
//     has one per live peer or peerWait passes, and then uses what came.
const (
	PeersBucket   = "nimbus_console_gateways"
	PeersSubject  = "nimbus.console.history"
	peerHeartbeat = 10 * time.Second
	peerTTL       = 3 * peerHeartbeat
	peerWait      = 2 * time.Second
)

// peerRequest asks the other gateways for their history of one function
// (Op "series") or their summary (Op "summary").
type peerRequest struct {
	From     string `json:"from"`
	Op       string `json:"op"`
	Function string `json:"function,omitempty"`
	Window   string `json:"window"`
}

type peerReply struct {
	From    string                    `json:"from"`
	Series  *console.RawSeries        `json:"series,omitempty"`
	Summary map[string]console.Totals `json:"summary,omitempty"`
	Error   string                    `json:"error,omitempty"`
}

// natsPeers is console.Peers over the gateways' shared NATS.
type natsPeers struct {
	nc      *nats.Conn
	kv      jetstream.KeyValue
	id      string
	history *console.History
	logger  hclog.Logger
	sub     *nats.Subscription
}

var _ console.Peers = (*natsPeers)(nil)

// openPeers joins the gateways that share this one's external NATS (with
// the embedded NATS this gateway is alone: nothing to do).
func (s *Server) openPeers(ctx context.Context) error {
	if s.cfg.Queue.URL == "" || s.history == nil {
		return nil
	}
	js, err := jetstream.New(s.nats.Conn)
	if err != nil {
		return fmt.Errorf("opening JetStream for the console's peers: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: PeersBucket, Description: "Nimbus gateways answering the console's history requests",
		History: 1, TTL: peerTTL, MaxBytes: 1 << 20, Storage: jetstream.MemoryStorage, Replicas: s.cfg.Queue.Replicas,
	})
	if err != nil {
		return fmt.Errorf("opening the console's peer bucket: %w", err)
	}
	p := &natsPeers{nc: s.nats.Conn, kv: kv, id: uuid.NewString(), history: s.history, logger: s.logger.Named("console-peers")}
	if p.sub, err = p.nc.Subscribe(PeersSubject, p.answer); err != nil {
		return fmt.Errorf("subscribing to the console's history requests: %w", err)
	}
	if _, err := kv.Put(ctx, p.id, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		_ = p.sub.Unsubscribe()
		return fmt.Errorf("announcing this gateway to the console's peers: %w", err)
	}
	s.peers = p
	s.console.SetPeers(p)
	return nil
}

// run renews this gateway's presence until ctx ends, then withdraws it.
func (p *natsPeers) run(ctx context.Context) {
	t := time.NewTicker(peerHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = p.kv.Delete(dctx, p.id)
			cancel()
			_ = p.sub.Unsubscribe()
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := p.kv.Put(pctx, p.id, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil && ctx.Err() == nil {
				p.logger.Warn("renewing this gateway's presence for the console", "error", err)
			}
			cancel()
		}
	}
}

// answer serves another gateway's request with this one's history.
func (p *natsPeers) answer(m *nats.Msg) {
	var req peerRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.From == p.id || m.Reply == "" {
		return
	}
	rep := peerReply{From: p.id}
	switch req.Op {
	case "series":
		if s, ok := p.history.Raw(req.Function, req.Window); ok {
			rep.Series = &s
		} else {
			rep.Error = "unknown window " + req.Window
		}
	case "summary":
		if s, ok := p.history.Summary(req.Window); ok {
			rep.Summary = s
		} else {
			rep.Error = "unknown window " + req.Window
		}
	default:
		rep.Error = "unknown op " + req.Op
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return
	}
	if err := m.Respond(b); err != nil {
		p.logger.Debug("answering a history request", "error", err)
	}
}

// peerCount is how many other gateways announce themselves.
func (p *natsPeers) peerCount(ctx context.Context) (int, error) {
	lister, err := p.kv.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = lister.Stop() }()
	n := 0
	for k := range lister.Keys() {
		if k != p.id {
			n++
		}
	}
	return n, nil
}

// gather sends req and collects one answer per live peer, or what came
// within peerWait.
func (p *natsPeers) gather(ctx context.Context, req peerRequest) ([]peerReply, error) {
	ctx, cancel := context.WithTimeout(ctx, peerWait)
	defer cancel()
	want, err := p.peerCount(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the other gateways: %w", err)
	}
	if want == 0 {
		return nil, nil
	}
	req.From = p.id
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	sub, err := p.nc.SubscribeSync(p.nc.NewRespInbox())
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := p.nc.PublishRequest(PeersSubject, sub.Subject, data); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []peerReply
	for len(seen) < want {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return out, fmt.Errorf("%d of %d other gateways answered within %s", len(seen), want, peerWait)
			}
			return out, err
		}
		var rep peerReply
		if json.Unmarshal(m.Data, &rep) != nil || seen[rep.From] {
			continue
		}
		seen[rep.From] = true
		if rep.Error != "" {
			p.logger.Debug("a gateway refused a history request", "peer", rep.From, "error", rep.Error)
			continue
		}
		out = append(out, rep)
	}
	return out, nil
}

func (p *natsPeers) Histories(ctx context.Context, fn, window string) ([]console.RawSeries, error) {
	reps, err := p.gather(ctx, peerRequest{Op: "series", Function: fn, Window: window})
	out := make([]console.RawSeries, 0, len(reps))
	for _, r := range reps {
		if r.Series != nil {
			out = append(out, *r.Series)
		}
	}
	return out, err
}

func (p *natsPeers) Summaries(ctx context.Context, window string) ([]map[string]console.Totals, error) {
	reps, err := p.gather(ctx, peerRequest{Op: "summary", Window: window})
	out := make([]map[string]console.Totals, 0, len(reps))
	for _, r := range reps {
		out = append(out, r.Summary)
	}
	return out, err
}
