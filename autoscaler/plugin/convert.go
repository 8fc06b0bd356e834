package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nimbus-fn/nimbus/autoscaler/proto/basepb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/sharedpb"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// ErrUnknownDirection is returned for a direction with no wire mapping,
// and, on decoding, for SCALING_DIRECTION_UNSPECIFIED (as the host does).
var ErrUnknownDirection = errors.New("scale direction is unknown")

func directionToProto(d sdk.Direction) (sharedpb.ScalingDirection, error) {
	switch d {
	case sdk.Down:
		return sharedpb.ScalingDirection_SCALING_DIRECTION_DOWN, nil
	case sdk.None:
		return sharedpb.ScalingDirection_SCALING_DIRECTION_NONE, nil
	case sdk.Up:
		return sharedpb.ScalingDirection_SCALING_DIRECTION_UP, nil
	}
	return 0, fmt.Errorf("%w: %v", ErrUnknownDirection, d)
}

func directionFromProto(d sharedpb.ScalingDirection) (sdk.Direction, error) {
	switch d {
	case sharedpb.ScalingDirection_SCALING_DIRECTION_DOWN:
		return sdk.Down, nil
	case sharedpb.ScalingDirection_SCALING_DIRECTION_NONE:
		return sdk.None, nil
	case sharedpb.ScalingDirection_SCALING_DIRECTION_UP:
		return sdk.Up, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownDirection, d.String())
}

// actionToProto never leaves the direction at the proto zero value, and
// sends meta as a JSON object in an Any with an empty type URL, or not at
// all when empty (an Any with empty bytes fails on the host).
func actionToProto(a sdk.Action) (*sharedpb.ScalingAction, error) {
	dir, err := directionToProto(a.Direction)
	if err != nil {
		return nil, err
	}
	out := &sharedpb.ScalingAction{Count: a.Count, Reason: a.Reason, Error: a.Error, Direction: dir}
	if len(a.Meta) > 0 {
		b, err := json.Marshal(a.Meta)
		if err != nil {
			return nil, fmt.Errorf("encoding action meta: %w", err)
		}
		out.Meta = &anypb.Any{Value: b}
	}
	return out, nil
}

// actionFromProto mirrors the host: a nil action is an empty None action;
// a present meta must hold a JSON object.
func actionFromProto(a *sharedpb.ScalingAction) (sdk.Action, error) {
	if a == nil {
		return sdk.Action{Direction: sdk.None}, nil
	}
	dir, err := directionFromProto(a.GetDirection())
	if err != nil {
		return sdk.Action{}, err
	}
	out := sdk.Action{Count: a.GetCount(), Reason: a.GetReason(), Error: a.GetError(), Direction: dir}
	if m := a.GetMeta(); m != nil {
		if err := json.Unmarshal(m.GetValue(), &out.Meta); err != nil {
			return sdk.Action{}, fmt.Errorf("decoding action meta: %w", err)
		}
	}
	return out, nil
}

func metricsToProto(ms []sdk.Metric) []*sharedpb.TimestampedMetric {
	out := make([]*sharedpb.TimestampedMetric, len(ms))
	for i, m := range ms {
		out[i] = &sharedpb.TimestampedMetric{Timestamp: timestamppb.New(m.Timestamp), Value: m.Value}
	}
	return out
}

func metricsFromProto(ms []*sharedpb.TimestampedMetric) []sdk.Metric {
	out := make([]sdk.Metric, len(ms))
	for i, m := range ms {
		out[i] = sdk.Metric{Timestamp: asTime(m.GetTimestamp()), Value: m.GetValue()}
	}
	return out
}

func timeRangeToProto(r sdk.TimeRange) *sharedpb.TimeRange {
	return &sharedpb.TimeRange{From: timestamppb.New(r.From), To: timestamppb.New(r.To)}
}

func timeRangeFromProto(r *sharedpb.TimeRange) sdk.TimeRange {
	return sdk.TimeRange{From: asTime(r.GetFrom()), To: asTime(r.GetTo())}
}

func asTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func checkToProto(c sdk.Check) *sharedpb.ScalingPolicyCheck {
	return &sharedpb.ScalingPolicyCheck{
		Name:        c.Name,
		Source:      c.Source,
		Query:       c.Query,
		QueryWindow: durationpb.New(c.QueryWindow),
		Strategy:    &sharedpb.ScalingPolicyStrategy{Name: c.Strategy, Config: c.StrategyConfig},
	}
}

func checkFromProto(c *sharedpb.ScalingPolicyCheck) sdk.Check {
	out := sdk.Check{
		Name:           c.GetName(),
		Source:         c.GetSource(),
		Query:          c.GetQuery(),
		Strategy:       c.GetStrategy().GetName(),
		StrategyConfig: c.GetStrategy().GetConfig(),
	}
	if w := c.GetQueryWindow(); w != nil {
		out.QueryWindow = w.AsDuration()
	}
	if out.StrategyConfig == nil {
		out.StrategyConfig = map[string]string{}
	}
	return out
}

func typeToProto(t sdk.PluginType) (basepb.PluginType, error) {
	switch t {
	case sdk.TypeAPM:
		return basepb.PluginType_PLUGIN_TYPE_APM, nil
	case sdk.TypeStrategy:
		return basepb.PluginType_PLUGIN_TYPE_STRATEGY, nil
	}
	return 0, fmt.Errorf("plugin type %q has no wire mapping", t)
}

func typeFromProto(t basepb.PluginType) (sdk.PluginType, error) {
	switch t {
	case basepb.PluginType_PLUGIN_TYPE_APM:
		return sdk.TypeAPM, nil
	case basepb.PluginType_PLUGIN_TYPE_STRATEGY:
		return sdk.TypeStrategy, nil
	case basepb.PluginType_PLUGIN_TYPE_TARGET:
		return "target", nil
	}
	return "", fmt.Errorf("plugin is of unknown type %q", t.String())
}
