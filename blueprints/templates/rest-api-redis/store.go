package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// Item is what the API stores: a name, any JSON document, and when it was
// created.
type Item struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Data    json.RawMessage `json:"data,omitempty"`
	Created time.Time       `json:"created"`
}

// Store keeps items. The functions use Redis; the tests also run the
// handlers against an in-memory Store.
type Store interface {
	Put(ctx context.Context, it Item) error
	Get(ctx context.Context, id string) (Item, bool, error)
	List(ctx context.Context) ([]Item, error)
	Delete(ctx context.Context, id string) (bool, error)
}

// RedisStore keeps every item in one Redis hash: field = item id, value =
// the item's JSON. One hash keeps List to a single HGETALL; for millions of
// items, page with HSCAN instead.
type RedisStore struct {
	rdb *redis.Client
	key string
}

// NewRedisStore connects to url (redis://[:password@]host:port/db or
// rediss:// for TLS) and stores items under key.
func NewRedisStore(url, key string) (*RedisStore, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if key == "" {
		return nil, errors.New("the items key is empty")
	}
	return &RedisStore{rdb: redis.NewClient(opts), key: key}, nil
}

func (s *RedisStore) Put(ctx context.Context, it Item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return s.rdb.HSet(ctx, s.key, it.ID, b).Err()
}

func (s *RedisStore) Get(ctx context.Context, id string) (Item, bool, error) {
	b, err := s.rdb.HGet(ctx, s.key, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, err
	}
	var it Item
	if err := json.Unmarshal(b, &it); err != nil {
		return Item{}, false, fmt.Errorf("item %s: %w", id, err)
	}
	return it, true, nil
}

func (s *RedisStore) List(ctx context.Context) ([]Item, error) {
	all, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(all))
	for id, raw := range all {
		var it Item
		if err := json.Unmarshal([]byte(raw), &it); err != nil {
			return nil, fmt.Errorf("item %s: %w", id, err)
		}
		out = append(out, it)
	}
	sortItems(out)
	return out, nil
}

func (s *RedisStore) Delete(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.key, id).Result()
	return n == 1, err
}

// sortItems orders items oldest first, then by id.
func sortItems(items []Item) {
	sort.Slice(items, func(i, j int) bool {
		if !items[i].Created.Equal(items[j].Created) {
			return items[i].Created.Before(items[j].Created)
		}
		return items[i].ID < items[j].ID
	})
}
