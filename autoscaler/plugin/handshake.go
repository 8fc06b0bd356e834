package plugin

import (
	goplugin "github.com/hashicorp/go-plugin"
)

// Handshake is the Nomad Autoscaler's go-plugin handshake (app protocol
// version 1); a plugin started without this cookie refuses to run.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3",
}

// Plugin-set keys. The host dispenses the type key and calls the base
// service over the same connection.
const (
	KeyBase     = "base"
	KeyAPM      = "apm"
	KeyStrategy = "strategy"
)
