package plugin

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nimbus-fn/nimbus/autoscaler/proto/apmpb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/basepb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/strategypb"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// DefaultCallTimeout bounds every call that arrives without a deadline: the
// host sets none on Query and Run, and a hung call would stall the policy.
const DefaultCallTimeout = time.Minute

type baseServer struct {
	basepb.UnimplementedBasePluginServiceServer
	impl Base
}

func (s *baseServer) PluginInfo(context.Context, *basepb.PluginInfoRequest) (*basepb.PluginInfoResponse, error) {
	info := s.impl.PluginInfo()
	t, err := typeToProto(info.Type)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &basepb.PluginInfoResponse{Name: info.Name, Type: t}, nil
}

func (s *baseServer) SetConfig(ctx context.Context, req *basepb.SetConfigRequest) (*basepb.SetConfigResponse, error) {
	cfg := req.GetConfig()
	if cfg == nil {
		cfg = map[string]string{}
	}
	if err := s.impl.SetConfig(ctx, cfg); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &basepb.SetConfigResponse{}, nil
}

type apmServer struct {
	apmpb.UnimplementedAPMPluginServiceServer
	impl APM
}

func (s *apmServer) Query(ctx context.Context, req *apmpb.QueryRequest) (*apmpb.QueryResponse, error) {
	ms, err := s.impl.Query(ctx, req.GetQuery(), timeRangeFromProto(req.GetTimeRange()))
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &apmpb.QueryResponse{TimestampedMetric: metricsToProto(ms)}, nil
}

// QueryMultiple is used only by Enterprise Dynamic Application Sizing; an
// empty answer is what the protocol allows for plugins without it.
func (s *apmServer) QueryMultiple(context.Context, *apmpb.QueryMultipleRequest) (*apmpb.QueryMultipleResponse, error) {
	return &apmpb.QueryMultipleResponse{}, nil
}

type strategyServer struct {
	strategypb.UnimplementedStrategyPluginServiceServer
	impl Strategy
}

func (s *strategyServer) Run(ctx context.Context, req *strategypb.RunRequest) (*strategypb.RunResponse, error) {
	in := sdk.RunRequest{
		Check:   checkFromProto(req.GetCheck()),
		Metrics: metricsFromProto(req.GetTimestampedMetric()),
		Count:   req.GetCount(),
	}
	act, err := s.impl.Run(ctx, in)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	pa, err := actionToProto(act)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// Echo check and metrics as upstream does; the host reads only action.
	return &strategypb.RunResponse{Action: pa, Check: req.GetCheck(), TimestampedMetric: req.GetTimestampedMetric()}, nil
}

// grpcPlugin is one plugin-set entry: it registers its service on the
// shared server, and on the client side wraps the shared connection.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	register func(*grpc.Server)
	client   func(*grpc.ClientConn) any
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	if p.register == nil {
		return fmt.Errorf("plugin-set entry has no server side")
	}
	p.register(s)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	if p.client == nil {
		return nil, fmt.Errorf("plugin-set entry has no client side")
	}
	return p.client(c), nil
}

// ServerSet is the plugin set that serves impl: "base" plus its type key.
func ServerSet(impl Base) (goplugin.PluginSet, error) {
	base := &grpcPlugin{register: func(s *grpc.Server) {
		basepb.RegisterBasePluginServiceServer(s, &baseServer{impl: impl})
	}}
	switch p := impl.(type) {
	case APM:
		return goplugin.PluginSet{KeyBase: base, KeyAPM: &grpcPlugin{register: func(s *grpc.Server) {
			apmpb.RegisterAPMPluginServiceServer(s, &apmServer{impl: p})
		}}}, nil
	case Strategy:
		return goplugin.PluginSet{KeyBase: base, KeyStrategy: &grpcPlugin{register: func(s *grpc.Server) {
			strategypb.RegisterStrategyPluginServiceServer(s, &strategyServer{impl: p})
		}}}, nil
	}
	return nil, fmt.Errorf("plugin %q is neither an APM nor a strategy", impl.PluginInfo().Name)
}

// ServeConfig is the go-plugin server configuration for impl: the
// autoscaler's handshake, the plugin set, and a gRPC server whose unary
// handlers recover panics and run under DefaultCallTimeout when the caller
// set no deadline.
func ServeConfig(impl Base, logger hclog.Logger) (*goplugin.ServeConfig, error) {
	set, err := ServerSet(impl)
	if err != nil {
		return nil, err
	}
	return &goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         set,
		Logger:          logger,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.ChainUnaryInterceptor(guard(logger, DefaultCallTimeout)))
			return goplugin.DefaultGRPCServer(opts)
		},
	}, nil
}

// Serve serves impl until the host kills the process. It writes the
// handshake line to stdout; nothing else may. Only main should call it.
func Serve(impl Base, logger hclog.Logger) error {
	cfg, err := ServeConfig(impl, logger)
	if err != nil {
		return err
	}
	goplugin.Serve(cfg)
	return nil
}

// guard recovers a handler's panic into an Internal error (a panic would
// kill the process, and the host never restarts it) and applies timeout to
// calls without a deadline.
func guard(logger hclog.Logger, timeout time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if _, ok := ctx.Deadline(); !ok && timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		defer func() {
			if r := recover(); r != nil {
				logger.Error("handler panicked", "method", info.FullMethod, "error", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "%s: internal error: %v", info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

// NewLogger is the logger a plugin main passes to Serve: JSON on stderr,
// which go-plugin forwards into the autoscaler agent's log.
func NewLogger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Debug,
		JSONFormat: true,
		Output:     os.Stderr,
	})
}
