//go:build tools

// Package tools pins the Consul agent that the project's tests start
// (internal/consultest). It is a separate module so the agent's large
// dependency graph never enters the main module.
//
// Build the agent with:
//
//	cd tools/consul && go build -o <dir>/consul github.com/hashicorp/consul
package tools

import _ "github.com/hashicorp/consul"
