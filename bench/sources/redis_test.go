package sourcesbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/gateway/sources/redis"
	"github.com/nimbus-fn/nimbus/internal/redistest"
	"github.com/nimbus-fn/nimbus/specs"
)

// redisRecords is the Redis throughput cases' N.
const redisRecords = 500000

// redisCases: one stream; one stream in four lanes (by the field "key").
var redisCases = []thrCase{
	{key: "redis-thr", units: 1, label: "1 stream"},
	{key: "redis-thr-pf4", units: 1, factor: 4, label: "1 stream, parallelization 4"},
}

// redisBroker is a real redis-server; every key is a stream.
type redisBroker struct {
	url string
	rc  *goredis.Client
}

// newRedis starts redis-server, or says why Redis is skipped.
func newRedis(b *testing.B) (*redisBroker, string) {
	if why := redisMissing(); why != "" {
		return nil, why
	}
	url := redistest.Start(b)
	opt, err := goredis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	b.Cleanup(func() { _ = rc.Close() })
	return &redisBroker{url: url, rc: rc}, ""
}

func (r *redisBroker) name() string     { return "redis" }
func (r *redisBroker) records() int     { return redisRecords }
func (r *redisBroker) cases() []thrCase { return redisCases }

// produce adds entries with the fields "data" and, for keyed records, "key".
func (r *redisBroker) produce(ctx context.Context, key string, rs ...rec) error {
	values := func(x rec) []any {
		if x.k == "" {
			return []any{"data", x.v}
		}
		return []any{"data", x.v, "key", x.k}
	}
	if len(rs) == 1 {
		return r.rc.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: values(rs[0])}).Err()
	}
	_, err := r.rc.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, x := range rs {
			p.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: values(x)})
		}
		return nil
	})
	return err
}

// consume is a consumer group member: XREADGROUP COUNT batchSize (blocking
// up to a second for new entries), then XACK of what it read.
func (r *redisBroker) consume(ctx context.Context, key, group string, _ bool, got func([][]byte, time.Time)) (func(), error) {
	if err := r.rc.XGroupCreateMkStream(ctx, key, group, "0").Err(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			res, err := r.rc.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "bench",
				Streams: []string{key, ">"}, Count: batchSize, Block: time.Second}).Result()
			at := time.Now()
			if err != nil {
				if !errors.Is(err, goredis.Nil) {
					// A broken read: back off a little, or stop with ctx.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
				}
				continue
			}
			var ids []string
			var ps [][]byte
			for _, s := range res {
				for _, m := range s.Messages {
					ids = append(ids, m.ID)
					d, _ := m.Values["data"].(string)
					ps = append(ps, []byte(d))
				}
			}
			if len(ids) == 0 {
				continue
			}
			_ = r.rc.XAck(context.WithoutCancel(ctx), key, group, ids...).Err() // loopback: does not fail
			got(ps, at)
		}
	}()
	return wg.Wait, nil
}

func (r *redisBroker) source(name, key string, factor int) *specs.EventSource {
	return &specs.EventSource{Name: name, Type: specs.SourceRedis, Enabled: true, URL: r.url, Stream: key,
		StartingFrom: "TRIM_HORIZON", BatchSize: batchSize, MaximumBatchingWindow: "0s", ParallelizationFactor: factor}
}

// event is the Redis event of a batch of key's entries (produce's fields).
func (r *redisBroker) event(key string, first int, batch []rec) ([]byte, error) {
	ev := redis.Event{EventSource: redis.EventSource, EventSourceArn: r.url + "/" + key}
	ms := time.Now().UnixMilli()
	for i, x := range batch {
		fields := map[string]string{"data": string(x.v)}
		if x.k != "" {
			fields["key"] = x.k
		}
		ev.Records = append(ev.Records, redis.EventRecord{Stream: key, ID: fmt.Sprintf("%d-%d", ms, first+i),
			Timestamp: ms, Fields: fields, Data: x.v})
	}
	return json.Marshal(ev)
}
