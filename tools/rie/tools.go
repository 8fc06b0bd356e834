//go:build tools

// Package tools pins the AWS Lambda Runtime Interface Emulator that the
// instance benchmark (bench/instance) runs as a baseline. It is a separate
// module so the emulator's dependencies never enter the main module.
//
// Build the emulator with:
//
//	cd tools/rie && go build -o <dir>/aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
package tools

import _ "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
