package proto

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nimbus-fn/nimbus/autoscaler/proto/apmpb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/basepb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/sharedpb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/strategypb"
)

// The wire contract from nomad-autoscaler-protocol.md §3, written out by hand
// so that an edit to a .proto file that changes what crosses the wire fails
// here even when the generated code was regenerated.
const (
	shared   = "hashicorp.nomad_autoscaler.plugins.shared.proto.v1."
	base     = "hashicorp.nomad_autoscaler.plugins.base.proto.v1."
	apm      = "hashicorp.nomad_autoscaler.plugins.apm.proto.v1."
	strategy = "hashicorp.nomad_autoscaler.plugins.strategy.proto.v1."
)

var wantMessages = map[string][]string{
	shared + "ScalingAction":         {"1 count int64", "2 reason string", "3 error bool", "4 direction enum " + shared + "ScalingDirection", "5 meta message google.protobuf.Any"},
	shared + "ScalingPolicyCheck":    {"1 name string", "2 source string", "3 query string", "4 query_window message google.protobuf.Duration", "5 strategy message " + shared + "ScalingPolicyStrategy"},
	shared + "ScalingPolicyStrategy": {"1 name string", "2 config map<string,string>"},
	shared + "TimeRange":             {"1 to message google.protobuf.Timestamp", "2 from message google.protobuf.Timestamp"},
	shared + "TimestampedMetric":     {"1 timestamp message google.protobuf.Timestamp", "2 value double"},
	base + "PluginInfoRequest":       {},
	base + "PluginInfoResponse":      {"1 name string", "2 type enum " + base + "PluginType"},
	base + "SetConfigRequest":        {"1 config map<string,string>"},
	base + "SetConfigResponse":       {},
	apm + "QueryRequest":             {"1 query string", "2 time_range message " + shared + "TimeRange"},
	apm + "QueryResponse":            {"1 timestamped_metric repeated message " + shared + "TimestampedMetric"},
	apm + "QueryMultipleRequest":     {"1 query string", "2 time_range message " + shared + "TimeRange"},
	apm + "QueryMultipleResponse":    {"1 timestamped_metric repeated message " + apm + "QueryResponse"},
	strategy + "RunRequest":          {"1 action message " + shared + "ScalingAction", "2 check message " + shared + "ScalingPolicyCheck", "3 timestamped_metric repeated message " + shared + "TimestampedMetric", "4 count int64"},
	strategy + "RunResponse":         {"1 action message " + shared + "ScalingAction", "2 check message " + shared + "ScalingPolicyCheck", "3 timestamped_metric repeated message " + shared + "TimestampedMetric"},
}

var wantEnums = map[string][]string{
	shared + "ScalingDirection": {"0 SCALING_DIRECTION_UNSPECIFIED", "1 SCALING_DIRECTION_NONE", "2 SCALING_DIRECTION_DOWN", "3 SCALING_DIRECTION_UP"},
	base + "PluginType":         {"0 PLUGIN_TYPE_UNSPECIFIED", "1 PLUGIN_TYPE_APM", "2 PLUGIN_TYPE_STRATEGY", "3 PLUGIN_TYPE_TARGET"},
}

var wantMethods = []string{
	"/" + base + "BasePluginService/PluginInfo " + base + "PluginInfoRequest -> " + base + "PluginInfoResponse",
	"/" + base + "BasePluginService/SetConfig " + base + "SetConfigRequest -> " + base + "SetConfigResponse",
	"/" + apm + "APMPluginService/Query " + apm + "QueryRequest -> " + apm + "QueryResponse",
	"/" + apm + "APMPluginService/QueryMultiple " + apm + "QueryMultipleRequest -> " + apm + "QueryMultipleResponse",
	"/" + strategy + "StrategyPluginService/Run " + strategy + "RunRequest -> " + strategy + "RunResponse",
}

func kind(f protoreflect.FieldDescriptor) string {
	switch {
	case f.IsMap():
		return fmt.Sprintf("map<%s,%s>", f.MapKey().Kind(), f.MapValue().Kind())
	case f.Kind() == protoreflect.MessageKind:
		return "message " + string(f.Message().FullName())
	case f.Kind() == protoreflect.EnumKind:
		return "enum " + string(f.Enum().FullName())
	}
	return f.Kind().String()
}

func TestWireContract(t *testing.T) {
	files := []protoreflect.FileDescriptor{
		sharedpb.File_autoscaler_proto_sharedpb_shared_proto,
		basepb.File_autoscaler_proto_basepb_base_proto,
		apmpb.File_autoscaler_proto_apmpb_apm_proto,
		strategypb.File_autoscaler_proto_strategypb_strategy_proto,
	}
	gotMessages, gotEnums := map[string][]string{}, map[string][]string{}
	var gotMethods []string
	for _, fd := range files {
		if fd.Syntax() != protoreflect.Proto3 {
			t.Errorf("%s is not proto3", fd.Path())
		}
		for i := 0; i < fd.Messages().Len(); i++ {
			m := fd.Messages().Get(i)
			fields := []string{}
			for j := 0; j < m.Fields().Len(); j++ {
				f := m.Fields().Get(j)
				k := kind(f)
				if f.IsList() {
					k = "repeated " + k
				}
				fields = append(fields, fmt.Sprintf("%d %s %s", f.Number(), f.Name(), k))
			}
			gotMessages[string(m.FullName())] = fields
		}
		for i := 0; i < fd.Enums().Len(); i++ {
			e := fd.Enums().Get(i)
			var vals []string
			for j := 0; j < e.Values().Len(); j++ {
				v := e.Values().Get(j)
				vals = append(vals, fmt.Sprintf("%d %s", v.Number(), v.Name()))
			}
			gotEnums[string(e.FullName())] = vals
		}
		for i := 0; i < fd.Services().Len(); i++ {
			s := fd.Services().Get(i)
			for j := 0; j < s.Methods().Len(); j++ {
				m := s.Methods().Get(j)
				if m.IsStreamingClient() || m.IsStreamingServer() {
					t.Errorf("%s is streaming; every autoscaler RPC is unary", m.FullName())
				}
				gotMethods = append(gotMethods, fmt.Sprintf("/%s/%s %s -> %s", s.FullName(), m.Name(), m.Input().FullName(), m.Output().FullName()))
			}
		}
	}
	compare := func(what string, got, want map[string][]string) {
		for name, w := range want {
			g, ok := got[name]
			if !ok {
				t.Errorf("%s %s missing", what, name)
				continue
			}
			if strings.Join(g, "; ") != strings.Join(w, "; ") {
				t.Errorf("%s %s:\n got  %v\n want %v", what, name, g, w)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%s %s is not in the reference contract", what, name)
			}
		}
	}
	compare("message", gotMessages, wantMessages)
	compare("enum", gotEnums, wantEnums)
	sort.Strings(gotMethods)
	want := append([]string(nil), wantMethods...)
	sort.Strings(want)
	if strings.Join(gotMethods, "\n") != strings.Join(want, "\n") {
		t.Errorf("methods:\n got  %v\n want %v", gotMethods, want)
	}
	// The generated gRPC code uses the same paths.
	if basepb.BasePluginService_PluginInfo_FullMethodName != "/"+base+"BasePluginService/PluginInfo" ||
		strategypb.StrategyPluginService_Run_FullMethodName != "/"+strategy+"StrategyPluginService/Run" ||
		apmpb.APMPluginService_Query_FullMethodName != "/"+apm+"APMPluginService/Query" {
		t.Error("generated method paths differ from the descriptors")
	}
}
