package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// Lag reports, for every partition of the mapping's topics, the records the
// group has not finished: the high watermark minus the group's committed
// offset. A partition without a committed offset counts from where this
// member started reading it, or else from where the group would start
// (TRIM_HORIZON: the log start; AT_TIMESTAMP: the first record at or after
// the timestamp; LATEST: the end, so 0).
func (s *Source) Lag(ctx context.Context) ([]sources.PartitionLag, error) {
	ends, err := s.adm.ListEndOffsets(ctx, s.topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("kafka: listing end offsets: %w", err)
	}
	committed, err := s.adm.FetchOffsets(ctx, s.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// Not joined yet anywhere: nothing is committed.
		committed, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: fetching committed offsets of group %q: %w", s.group, err)
	}

	var starts kadm.ListedOffsets // listed once, only when needed
	startOf := func(topic string, partition int32, end int64) (int64, error) {
		if s.start.name == "LATEST" {
			return end, nil
		}
		if starts == nil {
			var err error
			if s.start.name == "TRIM_HORIZON" {
				starts, err = s.adm.ListStartOffsets(ctx, s.topics...)
			} else {
				starts, err = s.adm.ListOffsetsAfterMilli(ctx, s.start.millis, s.topics...)
			}
			if err != nil {
				return 0, fmt.Errorf("kafka: listing start offsets: %w", err)
			}
		}
		o, ok := starts.Lookup(topic, partition)
		if !ok || o.Err != nil || o.Offset < 0 {
			return end, nil
		}
		return o.Offset, nil
	}

	s.mu.Lock()
	firsts := map[topicPartition]int64{}
	for tp, a := range s.owned {
		if a.first >= 0 {
			firsts[tp] = a.first
		}
	}
	s.mu.Unlock()

	var out []sources.PartitionLag
	for _, topic := range s.topics {
		parts := ends[topic]
		ids := make([]int32, 0, len(parts))
		for p := range parts {
			ids = append(ids, p)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, p := range ids {
			end := parts[p].Offset
			tp := topicPartition{topic, p}
			var base int64
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
				base = c.At
			} else if first, ok := firsts[tp]; ok {
				base = first
			} else if base, err = startOf(topic, p, end); err != nil {
				return nil, err
			}
			lag := end - base
			if lag < 0 {
				lag = 0
			}
			out = append(out, sources.PartitionLag{Partition: tp.String(), Records: lag})
		}
	}
	return out, nil
}
