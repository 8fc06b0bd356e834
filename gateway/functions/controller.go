package functions

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Applier puts a stored revision into service: in dev mode it checks the
// code is on disk; in a cluster it compiles the function into Nomad jobs
// and registers them (with Nomad's check-index, so gateways never
// overwrite each other's registration).
type Applier interface {
	// Apply makes f's current revision the one that runs. An error leaves
	// the previous revision serving.
	Apply(ctx context.Context, f *Function) error
}

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(ctx context.Context, f *Function) error

// Apply implements Applier.
func (a ApplierFunc) Apply(ctx context.Context, f *Function) error { return a(ctx, f) }

// Controller moves written revisions into service and records the outcome
// in Lambda's state fields: Pending → Active (or Failed) after a create,
// LastUpdateStatus InProgress → Successful (or Failed) after an update.
type Controller struct {
	store    *Store
	applier  Applier
	interval time.Duration
	kick     chan struct{}
	logger   hclog.Logger
	// onApplied runs after a successful apply or when functions were
	// deleted (the dev catalog reloads).
	onApplied func()
	// names is the function set of the last pass.
	names map[string]bool
}

// NewController returns a controller that checks the store every interval
// (default 1s) and whenever Kick is called.
func NewController(store *Store, applier Applier, interval time.Duration, logger hclog.Logger) *Controller {
	if interval <= 0 {
		interval = time.Second
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Controller{store: store, applier: applier, interval: interval, kick: make(chan struct{}, 1), logger: logger.Named("functions")}
}

// OnApplied sets a callback run once a revision is applied, before it is
// recorded Successful (the dev catalog reloads and replaces instances), and
// after a pass that saw a function deleted.
func (c *Controller) OnApplied(f func()) { c.onApplied = f }

// Kick asks for a pass now (after a write).
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run applies pending revisions until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}

// Pass applies every stored function whose current revision is not yet in
// service.
func (c *Controller) Pass(ctx context.Context) {
	fns, err := c.store.List(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.logger.Warn("listing functions", "error", err)
		}
		return
	}
	names := make(map[string]bool, len(fns))
	for _, f := range fns {
		names[f.Name] = true
	}
	deleted := false
	for n := range c.names {
		if !names[n] {
			deleted = true
		}
	}
	c.names = names
	for _, f := range fns {
		if f.Applied == f.RevisionID {
			continue
		}
		aerr := c.applier.Apply(ctx, f)
		if ctx.Err() != nil {
			return
		}
		if aerr != nil {
			c.logger.Warn("function revision not applied; the previous one keeps serving", "function", f.Name, "revision", f.RevisionID, "error", aerr)
		} else if c.onApplied != nil {
			// Serve the new revision before calling it Successful, so a
			// caller that waited for Successful meets it.
			if err := c.store.SetStatus(ctx, f.Name, f.RevisionID, func(n *Function) { n.Serving = n.Spec }); err != nil {
				c.logger.Warn("recording function state", "function", f.Name, "error", err)
				continue
			}
			c.onApplied()
		}
		err := c.store.SetStatus(ctx, f.Name, f.RevisionID, func(n *Function) {
			n.Applied = n.RevisionID
			if aerr != nil {
				code := ReasonCode(aerr)
				if n.State == StatePending {
					n.State, n.StateReason, n.StateReasonCode = StateFailed, aerr.Error(), code
				}
				n.LastUpdateStatus, n.LastUpdateStatusReason, n.LastUpdateStatusReasonCode = UpdateFailed, aerr.Error(), code
				return
			}
			n.Serving = n.Spec
			n.State, n.StateReason, n.StateReasonCode = StateActive, "", ""
			n.LastUpdateStatus, n.LastUpdateStatusReason, n.LastUpdateStatusReasonCode = UpdateSuccessful, "", ""
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			c.logger.Warn("recording function state", "function", f.Name, "error", err)
		}
	}
	if deleted && c.onApplied != nil {
		c.onApplied()
	}
}
