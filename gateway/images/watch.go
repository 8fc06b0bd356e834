package images

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/router"
)

// Invoker runs an invocation (the router).
type Invoker interface {
	Invoke(ctx context.Context, t router.Target, req *invokeapi.Request) (*invokeapi.Response, error)
}

// Catalog finds the version an invocation ran.
type Catalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
}

// Watch is an Invoker that hears of instances that cannot pull their
// image: an instance whose pull failed stays up and fails every invocation
// with a function error, and only it sets invokeapi.HeaderImageFailure
// (a function cannot fail itself). Watch records the reason it names as
// the function's State (Failed, functions.Store.ImageFailed) while $LATEST
// serves the image of the version that ran. It is how a cluster gateway,
// whose instances run in Nomad tasks, learns of it; the API, the async
// workers and the event-source pollers all invoke through it.
type Watch struct {
	inv    Invoker
	cat    Catalog
	store  *functions.Store
	logger hclog.Logger
}

var _ Invoker = (*Watch)(nil)

// NewWatch wraps inv; cat finds the version that ran, store records the state.
func NewWatch(inv Invoker, cat Catalog, store *functions.Store, logger hclog.Logger) *Watch {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Watch{inv: inv, cat: cat, store: store, logger: logger.Named("images")}
}

// Invoke implements Invoker.
func (w *Watch) Invoke(ctx context.Context, t router.Target, req *invokeapi.Request) (*invokeapi.Response, error) {
	resp, err := w.inv.Invoke(ctx, t, req)
	if err == nil && resp.ImageFailure != "" {
		w.failed(t, resp.ImageFailure)
	}
	return resp, err
}

func (w *Watch) failed(t router.Target, code string) {
	switch code {
	case functions.ReasonImageDeleted, functions.ReasonImageAccessDenied, functions.ReasonInvalidImage:
	default:
		w.logger.Warn("an instance named an unknown image failure", "function", t.Function, "version", t.Version, "reason", code)
		return
	}
	// The caller's context may end with its invocation; the write is short.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fn, err := w.cat.Function(ctx, t.Function)
	if err != nil {
		return
	}
	spec := fn.Versions[t.Version]
	if spec == nil || !spec.IsImage() {
		return
	}
	image := spec.Code.PinnedImage()
	if image == "" {
		return // a spec file's tag, pinned per launch: no state of its own to fail
	}
	reason := "An instance of version " + t.Version + " could not pull the function's image " + image + " (" + code + ")."
	changed, err := w.store.ImageFailed(ctx, t.Function, image, code, reason)
	switch {
	case err != nil:
		w.logger.Warn("recording an image failure", "function", t.Function, "error", err)
	case changed:
		w.logger.Error("function failed: its instance cannot pull its image", "function", t.Function, "version", t.Version, "image", image, "reason", code)
	}
}
