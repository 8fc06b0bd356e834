package proto_test

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/base"
	_ "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// TestWireNames pins the names Nomad resolves by string: service paths and
// the RecoverableError type URL. A typo here turns every call into
// Unimplemented.
func TestWireNames(t *testing.T) {
	for _, name := range []string{
		"hashicorp.nomad.plugins.base.proto.BasePlugin",
		"hashicorp.nomad.plugins.drivers.proto.Driver",
		"hashicorp.nomad.plugins.shared.structs.RecoverableError",
		"hashicorp.nomad.plugins.shared.structs.Attribute",
		"hashicorp.nomad.plugins.shared.hclspec.Spec",
	} {
		if _, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName("hashicorp.nomad.plugins.drivers.proto.Driver")
	if err != nil {
		t.Fatal(err)
	}
	methods := d.(protoreflect.ServiceDescriptor).Methods()
	streams := map[string][2]bool{ // client streaming, server streaming
		"Fingerprint": {false, true}, "TaskStats": {false, true}, "TaskEvents": {false, true},
		"ExecTaskStreaming": {true, true},
	}
	if methods.Len() != 18 {
		t.Errorf("Driver has %d methods, want 18", methods.Len())
	}
	for i := 0; i < methods.Len(); i++ {
		m := methods.Get(i)
		want := streams[string(m.Name())]
		if m.IsStreamingClient() != want[0] || m.IsStreamingServer() != want[1] {
			t.Errorf("%s: streaming (client %v, server %v), want %v", m.Name(), m.IsStreamingClient(), m.IsStreamingServer(), want)
		}
	}
}

// TestFieldNumbers spot-checks the numbers the reference singles out as
// traps (gaps, reordering, reserved slots).
func TestFieldNumbers(t *testing.T) {
	cases := []struct {
		msg, field string
		num        protoreflect.FieldNumber
	}{
		{"hashicorp.nomad.plugins.drivers.proto.MemoryUsage", "measured_fields", 6},
		{"hashicorp.nomad.plugins.drivers.proto.MemoryUsage", "usage", 7},
		{"hashicorp.nomad.plugins.drivers.proto.MemoryUsage", "swap", 8},
		{"hashicorp.nomad.plugins.drivers.proto.CPUUsage", "measured_fields", 7},
		{"hashicorp.nomad.plugins.drivers.proto.AllocatedMemoryResources", "memory_mb", 2},
		{"hashicorp.nomad.plugins.drivers.proto.AllocatedTaskResources", "networks", 5},
		{"hashicorp.nomad.plugins.drivers.proto.LinuxResources", "PercentTicks", 8},
		{"hashicorp.nomad.plugins.drivers.proto.LinuxResources", "cpuset_cgroup", 9},
		{"hashicorp.nomad.plugins.drivers.proto.DriverCapabilities", "disable_log_collection", 8},
		{"hashicorp.nomad.plugins.drivers.proto.DriverCapabilities", "dynamic_workload_users", 9},
		{"hashicorp.nomad.plugins.drivers.proto.TaskConfig", "parent_job_id", 22},
		{"hashicorp.nomad.plugins.drivers.proto.TaskHandle", "driver_state", 4},
		{"hashicorp.nomad.plugins.base.proto.NomadDriverConfig", "ClientMinPort", 2},
		{"hashicorp.nomad.plugins.shared.hclspec.Spec", "literal", 10},
	}
	for _, c := range cases {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(c.msg))
		if err != nil {
			t.Errorf("%s: %v", c.msg, err)
			continue
		}
		f := d.(protoreflect.MessageDescriptor).Fields().ByName(protoreflect.Name(c.field))
		if f == nil {
			t.Errorf("%s.%s: missing", c.msg, c.field)
			continue
		}
		if f.Number() != c.num {
			t.Errorf("%s.%s = %d, want %d", c.msg, c.field, f.Number(), c.num)
		}
	}
	caps, _ := protoregistry.GlobalFiles.FindDescriptorByName("hashicorp.nomad.plugins.drivers.proto.DriverCapabilities")
	if !caps.(protoreflect.MessageDescriptor).ReservedRanges().Has(7) {
		t.Error("DriverCapabilities field 7 (remote_tasks) must stay reserved")
	}
}
