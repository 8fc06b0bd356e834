package nomadplugin

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	basepb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/base"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// Handshake is Nomad's go-plugin handshake for every plugin type.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "NOMAD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255",
}

// Plugin-set keys Nomad dispenses.
const (
	KeyBase   = "base"
	KeyDriver = "driver"
)

// PluginSet is what the plugin serves: one gRPC service per key, both on the
// same server. With a nil driver it is the client side (as Nomad uses it):
// dispensing yields a basepb.BasePluginClient and a driverpb.DriverClient.
func PluginSet(d *Driver) plugin.PluginSet {
	bp := &basePlugin{}
	dp := &driverPlugin{}
	if d != nil {
		bp.srv, dp.srv = d.Base(), d
	}
	return plugin.PluginSet{KeyBase: bp, KeyDriver: dp}
}

type basePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv basepb.BasePluginServer
}

func (p *basePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	basepb.RegisterBasePluginServer(s, p.srv)
	return nil
}

func (p *basePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return basepb.NewBasePluginClient(c), nil
}

type driverPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv driverpb.DriverServer
}

func (p *driverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	driverpb.RegisterDriverServer(s, p.srv)
	return nil
}

func (p *driverPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return driverpb.NewDriverClient(c), nil
}

// ServeConfig is the go-plugin configuration Nomad accepts: its handshake,
// gRPC only, and d's logger (JSON on the original stderr) for go-plugin's own
// lines. test, when non-nil, serves in-process (tests only).
func ServeConfig(d *Driver, test *plugin.ServeTestConfig) *plugin.ServeConfig {
	return &plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(d),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          d.opts.Logger,
		Test:            test,
	}
}

// Serve runs the plugin until Nomad shuts it down. It prints go-plugin's
// handshake line on stdout; nothing else may write there before it.
func Serve(d *Driver) {
	plugin.Serve(ServeConfig(d, nil))
}
