package redis

import (
	"context"
	"fmt"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// Lag reports the group's backlog on the stream: entries not yet delivered
// to the group plus entries delivered and not yet acknowledged. Redis 7
// tells the first number (XINFO GROUPS "lag"); when it cannot (older Redis,
// entries deleted from the middle of the stream) Lag counts the entries
// after the group's last delivered id itself, up to 10 000.
func (s *Source) Lag(ctx context.Context) ([]sources.PartitionLag, error) {
	if err := s.ensureGroup(ctx); err != nil {
		return nil, fmt.Errorf("redis stream %q: %w", s.stream, s.safe(err))
	}
	groups, err := s.client.XInfoGroups(ctx, s.stream).Result()
	if err != nil {
		return nil, fmt.Errorf("redis stream %q: reading groups: %w", s.stream, s.safe(err))
	}
	for _, g := range groups {
		if g.Name != s.group {
			continue
		}
		lag := g.Lag
		if lag < 0 || (lag == 0 && g.EntriesRead == 0) {
			if lag, err = s.countAfter(ctx, g.LastDeliveredID); err != nil {
				return nil, fmt.Errorf("redis stream %q: counting undelivered entries: %w", s.stream, s.safe(err))
			}
		}
		return []sources.PartitionLag{{Partition: s.stream, Records: lag + g.Pending}}, nil
	}
	// The group vanished since it was made; Poll makes it again.
	s.groupMu.Lock()
	s.groupReady = false
	s.groupMu.Unlock()
	return nil, fmt.Errorf("redis stream %q: consumer group %q does not exist", s.stream, s.group)
}

func (s *Source) countAfter(ctx context.Context, lastID string) (int64, error) {
	if lastID == "" || lastID == "0-0" {
		return s.client.XLen(ctx, s.stream).Result()
	}
	msgs, err := s.client.XRangeN(ctx, s.stream, "("+lastID, "+", lagCountCap).Result()
	return int64(len(msgs)), err
}
