// Command kfakeserver runs a kfake Kafka cluster (one broker) on a loopback
// port until SIGTERM or SIGINT, for tests that need Kafka to live in another
// process than the consumer they kill:
//
//	kfakeserver -port 9092 -topic orders:3 -topic audit:1
//
// It prints the broker address(es), comma separated, on one stdout line once
// the cluster accepts connections. -port 0 picks a free port.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/nimbus-fn/nimbus/internal/kafkatest"
)

// topicFlags collects repeated -topic name:partitions flags.
type topicFlags map[string]int32

func (t topicFlags) String() string { return fmt.Sprint(map[string]int32(t)) }

func (t topicFlags) Set(s string) error {
	name, parts, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return fmt.Errorf("want name:partitions, got %q", s)
	}
	n, err := strconv.ParseInt(parts, 10, 32)
	if err != nil || n < 1 {
		return fmt.Errorf("partitions of %q: want a positive number, got %q", name, parts)
	}
	t[name] = int32(n)
	return nil
}

func main() {
	topics := topicFlags{}
	port := flag.Int("port", 0, "loopback port to listen on (0 picks a free one)")
	flag.Var(topics, "topic", "topic to create, as name:partitions (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *port, topics); err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
}

// run serves the cluster until ctx ends, after writing its address to out.
func run(ctx context.Context, out io.Writer, port int, topics map[string]int32) error {
	c, err := kafkatest.NewCluster(port, topics)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintln(out, strings.Join(c.ListenAddrs(), ",")); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
