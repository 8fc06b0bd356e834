package plugin

import (
	"context"
	"fmt"
	"sort"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/nimbus-fn/nimbus/autoscaler/proto/apmpb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/basepb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/sharedpb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/strategypb"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// BaseClient calls the base service the way the autoscaler agent does.
type BaseClient struct {
	base basepb.BasePluginServiceClient
}

// PluginInfo returns the plugin's reported name and type; an unknown type is
// an error, as it is for the host.
func (c *BaseClient) PluginInfo(ctx context.Context) (sdk.Info, error) {
	resp, err := c.base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
	if err != nil {
		return sdk.Info{}, err
	}
	t, err := typeFromProto(resp.GetType())
	if err != nil {
		return sdk.Info{}, err
	}
	return sdk.Info{Name: resp.GetName(), Type: t}, nil
}

// SetConfig sends the agent block's config.
func (c *BaseClient) SetConfig(ctx context.Context, config map[string]string) error {
	_, err := c.base.SetConfig(ctx, &basepb.SetConfigRequest{Config: config})
	return err
}

// APMClient is the host's view of an APM plugin.
type APMClient struct {
	BaseClient
	apm apmpb.APMPluginServiceClient
}

// Query returns the points sorted oldest first, and fails on an empty
// answer with the host's own words.
func (c *APMClient) Query(ctx context.Context, query string, r sdk.TimeRange) ([]sdk.Metric, error) {
	resp, err := c.apm.Query(ctx, &apmpb.QueryRequest{Query: query, TimeRange: timeRangeToProto(r)})
	if err != nil {
		return nil, err
	}
	ms := metricsFromProto(resp.GetTimestampedMetric())
	if len(ms) == 0 {
		return nil, fmt.Errorf("no metrics available")
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Timestamp.Before(ms[j].Timestamp) })
	return ms, nil
}

// QueryMultiple calls the Enterprise-only method and returns how many
// series came back.
func (c *APMClient) QueryMultiple(ctx context.Context, query string, r sdk.TimeRange) (int, error) {
	resp, err := c.apm.QueryMultiple(ctx, &apmpb.QueryMultipleRequest{Query: query, TimeRange: timeRangeToProto(r)})
	if err != nil {
		return 0, err
	}
	return len(resp.GetTimestampedMetric()), nil
}

// StrategyClient is the host's view of a strategy plugin.
type StrategyClient struct {
	BaseClient
	strategy strategypb.StrategyPluginServiceClient
}

// Run sends an empty action, the check, the metrics and the count, and
// decodes the reply's action with the host's rules (direction UNSPECIFIED
// and invalid meta are errors; a missing action is None).
func (c *StrategyClient) Run(ctx context.Context, req sdk.RunRequest) (sdk.Action, error) {
	resp, err := c.strategy.Run(ctx, &strategypb.RunRequest{
		Action:            &sharedpb.ScalingAction{},
		Check:             checkToProto(req.Check),
		TimestampedMetric: metricsToProto(req.Metrics),
		Count:             req.Count,
	})
	if err != nil {
		return sdk.Action{}, err
	}
	return actionFromProto(resp.GetAction())
}

// ClientSet is the host side's plugin set: Dispense(KeyAPM) yields an
// *APMClient, Dispense(KeyStrategy) a *StrategyClient.
func ClientSet() goplugin.PluginSet {
	return goplugin.PluginSet{
		KeyBase: &grpcPlugin{client: func(c *grpc.ClientConn) any {
			return &BaseClient{base: basepb.NewBasePluginServiceClient(c)}
		}},
		KeyAPM: &grpcPlugin{client: func(c *grpc.ClientConn) any {
			return &APMClient{BaseClient: BaseClient{base: basepb.NewBasePluginServiceClient(c)}, apm: apmpb.NewAPMPluginServiceClient(c)}
		}},
		KeyStrategy: &grpcPlugin{client: func(c *grpc.ClientConn) any {
			return &StrategyClient{BaseClient: BaseClient{base: basepb.NewBasePluginServiceClient(c)}, strategy: strategypb.NewStrategyPluginServiceClient(c)}
		}},
	}
}
