// Command memhog is a real aws-lambda-go function that allocates and
// touches the event's "mb" megabytes and holds them for "hold_ms".
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	MB     int `json:"mb"`
	HoldMs int `json:"hold_ms"`
}

var keep [][]byte

func main() {
	lambda.Start(func(_ context.Context, ev event) (string, error) {
		for i := 0; i < ev.MB; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		time.Sleep(time.Duration(ev.HoldMs) * time.Millisecond)
		return fmt.Sprintf("held %d MB", len(keep)), nil
	})
}
