// Command netprobe is a real aws-lambda-go function that reports what
// network its environment has: the interfaces it sees, what connecting to
// each address of the event got, and what resolving the event's name got.
package main

import (
	"context"
	"net"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	// Connect lists host:port addresses to dial (TCP).
	Connect []string `json:"connect"`
	// Lookup is a name to resolve.
	Lookup string `json:"lookup"`
}

type report struct {
	Interfaces []string          `json:"interfaces"`
	Connect    map[string]string `json:"connect"` // "ok" or the error
	Lookup     string            `json:"lookup"`  // "ok" or the error
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func main() {
	lambda.Start(func(ctx context.Context, ev event) (*report, error) {
		r := &report{Connect: map[string]string{}}
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, i := range ifs {
			r.Interfaces = append(r.Interfaces, i.Name)
		}
		d := net.Dialer{Timeout: 2 * time.Second}
		for _, a := range ev.Connect {
			c, err := d.DialContext(ctx, "tcp", a)
			if err == nil {
				c.Close()
			}
			r.Connect[a] = result(err)
		}
		if ev.Lookup != "" {
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := net.DefaultResolver.LookupHost(lctx, ev.Lookup)
			cancel()
			r.Lookup = result(err)
		}
		return r, nil
	})
}
