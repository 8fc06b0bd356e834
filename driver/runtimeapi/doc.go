// Package runtimeapi serves the AWS Lambda Runtime API (2018-06-01) and the
// part of the Extensions API (2020-01-01) that aws-lambda-go uses, over a
// small Broker interface that the instance implements for each execution
// environment.
//
// It owns the wire: paths, header names, exact status codes and the JSON
// error bodies the Runtime Interface Emulator answers with. aws-lambda-go
// exits on any status it does not expect (200 on /next, 202 on every POST),
// so every answer here is exact. The lifecycle decisions (which transition is
// allowed, what an invocation's outcome is) belong to the Broker.
//
// It imports only the standard library.
package runtimeapi
