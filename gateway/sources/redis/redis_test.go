package redis

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/redistest"
)

func msOf(t *testing.T, id string) int64 {
	t.Helper()
	ms, err := strconv.ParseInt(strings.SplitN(id, "-", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return ms
}

func TestEntriesInOrderWithFieldsAndDoneAcks(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders"})
	if recs := pollOnce(t, s, 10, 0); len(recs) != 0 {
		t.Fatalf("empty stream gave %v", ids(recs))
	}

	order := `{"amount":12,"currency":"EUR"}`
	id1 := add(t, c, "orders", "*", "data", order, "kind", "order")
	id2 := add(t, c, "orders", "*", "data", "plain text")
	id3 := add(t, c, "orders", "*", "kind", "ping", "n", "3")
	recs := poll(t, s, 3)
	if got, want := ids(recs), []string{id1, id2, id3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	for _, r := range recs {
		if r.Partition != "orders" || r.Deliveries != 1 || !r.Time.Equal(time.UnixMilli(msOf(t, r.ID))) {
			t.Errorf("%s: partition %q deliveries %d time %v", r.ID, r.Partition, r.Deliveries, r.Time)
		}
	}
	if want := len("data") + len(order) + len("kind") + len("order"); recs[0].Size != want {
		t.Errorf("size %d, want %d", recs[0].Size, want)
	}
	wantFilter := map[string]any{
		"stream": "orders", "id": id1, "timestamp": float64(msOf(t, id1)),
		"fields": map[string]any{"data": order, "kind": "order"},
		"data":   map[string]any{"amount": float64(12), "currency": "EUR"},
	}
	if !reflect.DeepEqual(recs[0].Filter, wantFilter) {
		t.Errorf("filter\n got %#v\nwant %#v", recs[0].Filter, wantFilter)
	}
	if d := recs[1].Filter["data"]; d != "plain text" {
		t.Errorf("filter data of a non-JSON payload = %#v", d)
	}
	if d, ok := recs[2].Filter["data"]; ok {
		t.Errorf("filter of an entry without data field has data %#v", d)
	}

	raw, err := s.Event(recs)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: %v", raw, err)
	}
	if ev.EventSource != "nimbus:redis" || ev.EventSourceArn != url+"/orders" || len(ev.Records) != 3 {
		t.Fatalf("event %s", raw)
	}
	wantData := []string{order, "plain text", `{"kind":"ping","n":"3"}`}
	for i, r := range ev.Records {
		if r.ID != recs[i].ID || r.Stream != "orders" || r.Timestamp != msOf(t, r.ID) || string(r.Data) != wantData[i] {
			t.Errorf("record %d: %+v (data %q)", i, r, r.Data)
		}
	}
	if !reflect.DeepEqual(ev.Records[0].Fields, map[string]string{"data": order, "kind": "order"}) {
		t.Errorf("fields %v", ev.Records[0].Fields)
	}
	if !strings.Contains(string(raw), `"data":"eyJhbW91bnQiOjEyLCJjdXJyZW5jeSI6IkVVUiJ9"`) {
		t.Errorf("data is not the base64 of the data field: %s", raw)
	}

	key, info := s.BatchInfo(recs)
	first, last := time.UnixMilli(msOf(t, id1)).UTC(), time.UnixMilli(msOf(t, id3)).UTC()
	wantInfo := BatchInfo{
		Stream: "orders", Group: "g", StartID: id1, EndID: id3, BatchSize: 3,
		ApproximateArrivalOfFirstRecord: first.Format("2006-01-02T15:04:05.000Z"),
		ApproximateArrivalOfLastRecord:  last.Format("2006-01-02T15:04:05.000Z"),
	}
	if key != "RedisBatchInfo" || !reflect.DeepEqual(info, wantInfo) {
		t.Errorf("BatchInfo = %q %+v, want %+v", key, info, wantInfo)
	}

	if p := pendingIDs(t, c, "orders", "g", ""); len(p) != 3 {
		t.Fatalf("pending before Done: %v", p)
	}
	done(t, s, recs[:2])
	if p := pendingIDs(t, c, "orders", "g", ""); !reflect.DeepEqual(p, []string{id3}) {
		t.Fatalf("pending after Done of two: %v", p)
	}
	done(t, s, recs[2:])
	if p := pendingIDs(t, c, "orders", "g", ""); len(p) != 0 {
		t.Fatalf("pending after Done: %v", p)
	}
	if again := pollOnce(t, s, 10, 0); len(again) != 0 {
		t.Fatalf("acknowledged entries came back: %v", ids(again))
	}
}

func TestUnDoneEntriesComeBackToARestartedSourceFirst(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	id1 := add(t, c, "orders", "*", "data", "1")
	id2 := add(t, c, "orders", "*", "data", "2")
	id3 := add(t, c, "orders", "*", "data", "3")

	// A member name with a space and non-ASCII still makes a valid
	// connection name.
	s1 := open(t, setup{url: url, stream: "orders", member: "gw a-é", from: "TRIM_HORIZON"})
	recs := poll(t, s1, 3)
	if recs[0].ID != id1 {
		t.Fatalf("first entry %s, want %s", recs[0].ID, id1)
	}
	done(t, s1, recs[:1])
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	id4 := add(t, c, "orders", "*", "data", "4")

	s2 := open(t, setup{url: url, stream: "orders", member: "gw a-é", from: "TRIM_HORIZON"})
	first := pollOnce(t, s2, 10, 0)
	if got, want := ids(first), []string{id2, id3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first poll after restart %v, want own pending %v", got, want)
	}
	for _, r := range first {
		if r.Deliveries != 2 {
			t.Errorf("%s delivered %d times, want 2", r.ID, r.Deliveries)
		}
		if d := r.Filter["data"]; d != map[string]string{id2: "2", id3: "3"}[r.ID] {
			t.Errorf("%s data %v", r.ID, d)
		}
	}
	next := poll(t, s2, 1)
	if got := ids(next); !reflect.DeepEqual(got, []string{id4}) || next[0].Deliveries != 1 {
		t.Fatalf("then %v (deliveries %d), want [%s]", got, next[0].Deliveries, id4)
	}
	if again := pollOnce(t, s2, 10, 0); len(again) != 0 {
		t.Fatalf("held entries handed out twice: %v", ids(again))
	}
	done(t, s2, append(first, next...))
	if p := pendingIDs(t, c, "orders", "g", ""); len(p) != 0 {
		t.Fatalf("pending after Done: %v", p)
	}
}

func TestStartingPositions(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	cases := []struct {
		name, from, timestamp string
		want                  []string
	}{
		{"latest", "LATEST", "", nil},
		{"default is latest", "", "", nil},
		{"trim horizon", "TRIM_HORIZON", "", []string{"1000-0", "2000-0", "2000-1", "3000-0"}},
		{"at timestamp", "AT_TIMESTAMP", "1970-01-01T00:00:02Z", []string{"2000-0", "2000-1", "3000-0"}},
		{"at timestamp mid-second", "AT_TIMESTAMP", "1970-01-01T00:00:02.5+00:00", []string{"3000-0"}},
		{"at timestamp after all", "AT_TIMESTAMP", "1970-01-01T00:00:03.001Z", nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := "s" + strconv.Itoa(i)
			for _, id := range []string{"1000-0", "2000-0", "2000-1", "3000-0"} {
				add(t, c, stream, id, "data", id)
			}
			s := open(t, setup{url: url, stream: stream, from: tc.from, timestamp: tc.timestamp})
			var got []string
			if len(tc.want) > 0 {
				got = ids(poll(t, s, len(tc.want)))
			} else {
				got = ids(pollOnce(t, s, 10, 0))
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			add(t, c, stream, "4000-0", "data", "new")
			if got := ids(poll(t, s, 1)); !reflect.DeepEqual(got, []string{"4000-0"}) {
				t.Fatalf("after the start: %v, want [4000-0]", got)
			}
		})
	}
}

func TestExistingGroupKeepsItsPosition(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	for _, id := range []string{"1000-0", "2000-0", "3000-0"} {
		add(t, c, "orders", id, "data", id)
	}
	s1 := open(t, setup{url: url, stream: "orders", member: "a", from: "TRIM_HORIZON"})
	recs := poll(t, s1, 2)
	done(t, s1, recs)
	_ = s1.Close()

	// LATEST would start after 3000-0 for a new group; the existing one
	// goes on where it was.
	s2 := open(t, setup{url: url, stream: "orders", member: "b", from: "LATEST"})
	if got := ids(poll(t, s2, 1)); !reflect.DeepEqual(got, []string{"3000-0"}) {
		t.Fatalf("got %v, want [3000-0]", got)
	}
}

func TestMembersShareEntriesAndClaimWhatADeadMemberHeld(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	var all []string
	for i := 1; i <= 6; i++ {
		all = append(all, add(t, c, "orders", "*", "data", strconv.Itoa(i)))
	}
	opts := Options{ClaimIdle: time.Second, ClaimInterval: 100 * time.Millisecond}
	b := open(t, setup{url: url, stream: "orders", member: "b", from: "TRIM_HORIZON", opts: opts})
	a := open(t, setup{url: url, stream: "orders", member: "a", from: "TRIM_HORIZON", opts: opts})
	live := open(t, setup{url: url, stream: "orders", member: "c", from: "TRIM_HORIZON", opts: opts})

	rb := pollOnce(t, b, 2, 0)
	ra := pollOnce(t, a, 2, 0)
	rc := pollOnce(t, live, 2, 0)
	if !reflect.DeepEqual(ids(rb), all[0:2]) || !reflect.DeepEqual(ids(ra), all[2:4]) || !reflect.DeepEqual(ids(rc), all[4:6]) {
		t.Fatalf("shares b=%v a=%v c=%v of %v", ids(rb), ids(ra), ids(rc), all)
	}

	// a dies holding its entries; b is alive and still working on its own
	// (never Done during the test) for longer than the claim idle time.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	done(t, live, rc)
	claimed := poll(t, live, 2)
	if got := ids(claimed); !reflect.DeepEqual(got, all[2:4]) {
		t.Fatalf("claimed %v, want a's %v (b's entries must stay with b)", got, all[2:4])
	}
	for _, r := range claimed {
		if r.Deliveries != 2 {
			t.Errorf("claimed %s has deliveries %d, want 2", r.ID, r.Deliveries)
		}
	}
	if p := pendingIDs(t, c, "orders", "g", "b"); !reflect.DeepEqual(p, all[0:2]) {
		t.Fatalf("b's pending %v, want %v", p, all[0:2])
	}
	if p := pendingIDs(t, c, "orders", "g", "c"); !reflect.DeepEqual(p, all[2:4]) {
		t.Fatalf("c's pending %v, want %v", p, all[2:4])
	}
	done(t, live, claimed)
	done(t, b, rb)
	if p := pendingIDs(t, c, "orders", "g", ""); len(p) != 0 {
		t.Fatalf("pending after Done: %v", p)
	}
}

func TestPasswordAuthAndThePasswordNeverLeaks(t *testing.T) {
	const pw = "Zq7-very-secret-pw"
	srv := redistest.StartServer(t, redistest.Options{Password: pw})
	url := srv.URL()
	if !strings.Contains(url, pw) {
		t.Fatalf("test server URL %q lacks the password", url)
	}
	logs := &gatewaytest.LogBuffer{}
	c := admin(t, url)
	id := add(t, c, "orders", "*", "data", "x", "kind", "k")
	s := open(t, setup{url: url, stream: "orders", from: "TRIM_HORIZON", log: logs})
	recs := poll(t, s, 1)
	if recs[0].ID != id {
		t.Fatalf("got %s, want %s", recs[0].ID, id)
	}
	raw, err := s.Event(recs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), pw) {
		t.Errorf("event holds the password: %s", raw)
	}
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if want := "redis://" + srv.Addr() + "/0/orders"; ev.EventSourceArn != want {
		t.Errorf("eventSourceArn %q, want %q", ev.EventSourceArn, want)
	}
	_, info := s.BatchInfo(recs)
	if b, _ := json.Marshal(info); strings.Contains(string(b), pw) || !strings.Contains(string(b), id) {
		t.Errorf("batch info %s", b)
	}

	// A wrong password: errors name the failure, never a password.
	wrong := "redis://:" + "wrong-" + pw + "@" + srv.Addr() + "/0"
	bad := open(t, setup{url: wrong, stream: "orders", member: "m2", log: logs})
	_, err = pollGuarded(t, bad, 10, 0)
	if err == nil {
		t.Fatal("Poll with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("Poll error holds the password: %v", err)
	}
	if _, err := bad.Lag(context.Background()); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("Lag error %v", err)
	}
	for _, u := range []string{
		"redis://:" + pw + "@127.0.0.1:notaport/0",
		"redis://:" + pw + "@127.0.0.1:1/notadb",
		"redis://:" + pw + "@127.0.0.1:1/0\x7f",
	} {
		_, err := Open(context.Background(), sources.Config{
			Spec: specTo(u), Member: "m", Logger: gatewaytest.Logger(t),
		})
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("Open(bad url) error %v", err)
		}
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("logs hold the password:\n%s", logs.String())
	}
}

func TestRedisDownPollErrorsThenRecovers(t *testing.T) {
	srv := redistest.StartServer(t, redistest.Options{})
	url := srv.URL()
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders", from: "TRIM_HORIZON"})
	id1 := add(t, c, "orders", "*", "data", "before")
	recs := poll(t, s, 1)
	if recs[0].ID != id1 {
		t.Fatalf("got %s, want %s", recs[0].ID, id1)
	}
	done(t, s, recs)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, 200 * time.Millisecond} {
		if _, err := pollGuarded(t, s, 10, wait); err == nil {
			t.Fatalf("Poll(wait=%s) with Redis down succeeded", wait)
		} else if !strings.Contains(err.Error(), `redis stream "orders"`) {
			t.Errorf("error %q does not name the stream", err)
		}
	}

	// Redis comes back empty (no persistence): the group is gone and is
	// made again, after the last entry seen.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var id2 string
	gatewaytest.Eventually(t, within, func() bool {
		id, err := c.XAdd(context.Background(), &goredis.XAddArgs{Stream: "orders", Values: []any{"data", "after"}}).Result()
		id2 = id
		return err == nil
	}, "XADD after restart")
	got := poll(t, s, 1)
	if got[0].ID != id2 || got[0].Filter["data"] != "after" {
		t.Fatalf("after restart got %s %v, want %s", got[0].ID, got[0].Filter, id2)
	}
	done(t, s, got)
	if p := pendingIDs(t, c, "orders", "g", ""); len(p) != 0 {
		t.Fatalf("pending after Done: %v", p)
	}
}

func TestDeletedStreamIsRecreated(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders"})
	pollOnce(t, s, 10, 0)
	id1 := add(t, c, "orders", "*", "data", "1")
	done(t, s, poll(t, s, 1))

	// A blocked read is woken by the deletion (Redis answers it with an
	// error); Poll recreates the group and reads on, after the last entry it
	// saw.
	type result struct {
		recs []*sources.Record
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		recs, err := s.Poll(context.Background(), 10, 20*time.Second)
		ch <- result{recs, err}
	}()
	gatewaytest.Eventually(t, within, func() bool {
		list, err := c.ClientList(context.Background()).Result()
		return err == nil && strings.Contains(list, "cmd=xreadgroup")
	}, "the source blocked in XREADGROUP")
	if err := c.Del(context.Background(), "orders").Err(); err != nil {
		t.Fatal(err)
	}
	id2 := add(t, c, "orders", "*", "data", "2")
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Poll: %v", r.err)
		}
		if got := ids(r.recs); !reflect.DeepEqual(got, []string{id2}) || id2 == id1 {
			t.Fatalf("after deletion got %v, want [%s]", got, id2)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Poll hung after the stream was deleted")
	}
}

func TestLagReportsBacklog(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	var all []string
	for i := 1; i <= 5; i++ {
		all = append(all, add(t, c, "orders", "*", "data", strconv.Itoa(i)))
	}
	s := open(t, setup{url: url, stream: "orders", from: "TRIM_HORIZON"})
	lag := func() int64 {
		t.Helper()
		l, err := s.Lag(context.Background())
		if err != nil {
			t.Fatalf("Lag: %v", err)
		}
		if len(l) != 1 || l[0].Partition != "orders" {
			t.Fatalf("Lag = %+v", l)
		}
		return l[0].Records
	}
	if n := lag(); n != 5 {
		t.Fatalf("lag before reading %d, want 5", n)
	}
	recs := pollOnce(t, s, 2, 0)
	if n := lag(); n != 5 {
		t.Fatalf("lag with 2 read, not done: %d, want 5 (3 undelivered + 2 pending)", n)
	}
	done(t, s, recs)
	if n := lag(); n != 3 {
		t.Fatalf("lag after Done %d, want 3", n)
	}
	// A deleted undelivered entry leaves Redis unable to tell the lag: the
	// source counts.
	if err := c.XDel(context.Background(), "orders", all[3]).Err(); err != nil {
		t.Fatal(err)
	}
	if n := lag(); n != 2 {
		t.Fatalf("lag after XDEL %d, want 2", n)
	}
}

func TestPollNeverBlocksForeverAndWakesOnNewEntry(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders"})
	for _, wait := range []time.Duration{0, 500 * time.Microsecond, 20 * time.Millisecond} {
		if recs := pollOnce(t, s, 10, wait); len(recs) != 0 {
			t.Fatalf("wait %s: %v", wait, ids(recs))
		}
	}
	ch := make(chan []*sources.Record, 1)
	go func() {
		recs, _ := s.Poll(context.Background(), 10, 20*time.Second)
		ch <- recs
	}()
	id := add(t, c, "orders", "*", "data", "x")
	select {
	case recs := <-ch:
		if len(recs) == 1 && recs[0].ID == id {
			return
		}
		// The XADD may have beaten the read; then the next Poll has it.
		if got := poll(t, s, 1); got[0].ID != id {
			t.Fatalf("got %v, want %s", ids(got), id)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("blocking Poll hung")
	}
}

func TestOpenRejectsBadSettings(t *testing.T) {
	cases := map[string]sources.Config{
		"no stream":         {Spec: specTo("redis://127.0.0.1:1/0", func(e *specEdit) { e.Stream = "" }), Member: "m"},
		"no member":         {Spec: specTo("redis://127.0.0.1:1/0")},
		"no url":            {Spec: specTo(""), Member: "m"},
		"bad scheme":        {Spec: specTo("http://127.0.0.1:1/0"), Member: "m"},
		"unknown position":  {Spec: specTo("redis://127.0.0.1:1/0", func(e *specEdit) { e.StartingFrom = "AT_SEQUENCE" }), Member: "m"},
		"no timestamp":      {Spec: specTo("redis://127.0.0.1:1/0", func(e *specEdit) { e.StartingFrom = "AT_TIMESTAMP" }), Member: "m"},
		"bad timestamp":     {Spec: specTo("redis://127.0.0.1:1/0", func(e *specEdit) { e.StartingFrom = "AT_TIMESTAMP"; e.StartingTimestamp = "yesterday" }), Member: "m"},
		"no spec":           {Member: "m"},
		"bad database path": {Spec: specTo("redis://127.0.0.1:1/0/1"), Member: "m"},
	}
	for name, cfg := range cases {
		if s, err := Open(context.Background(), cfg); err == nil {
			_ = s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestStartingID(t *testing.T) {
	cases := []struct{ from, ts, want string }{
		{"", "", "$"},
		{"LATEST", "", "$"},
		{"TRIM_HORIZON", "", "0"},
		{"AT_TIMESTAMP", "1970-01-01T00:00:02Z", "1999-18446744073709551615"},
		{"AT_TIMESTAMP", "2024-06-10T06:13:20.123+02:00", "1717992800122-18446744073709551615"},
		{"AT_TIMESTAMP", "1960-01-01T00:00:00Z", "0"},
	}
	for _, tc := range cases {
		got, err := startingID(tc.from, tc.ts)
		if err != nil || got != tc.want {
			t.Errorf("startingID(%q, %q) = %q, %v; want %q", tc.from, tc.ts, got, err, tc.want)
		}
	}
}

func TestOptionDefaults(t *testing.T) {
	o := Options{}.withDefaults(0)
	if o.ClaimIdle != 30*time.Second || o.ClaimInterval != 5*time.Second {
		t.Errorf("no timeout: %+v", o)
	}
	o = Options{}.withDefaults(time.Minute)
	if o.ClaimIdle != 210*time.Second || o.ClaimInterval != 5*time.Second {
		t.Errorf("1m timeout: %+v", o)
	}
	o = Options{ClaimIdle: 400 * time.Millisecond}.withDefaults(time.Minute)
	if o.ClaimIdle != 400*time.Millisecond || o.ClaimInterval != 100*time.Millisecond {
		t.Errorf("short claim idle: %+v", o)
	}
}

func TestHungRedisPollErrorsInsteadOfHanging(t *testing.T) {
	srv := redistest.StartServer(t, redistest.Options{})
	url := srv.URL()
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders", from: "TRIM_HORIZON",
		opts: Options{ReadTimeout: 500 * time.Millisecond, DialTimeout: 500 * time.Millisecond}})
	pollOnce(t, s, 10, 0)

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, 300 * time.Millisecond} {
		if _, err := pollGuarded(t, s, 10, wait); err == nil {
			t.Fatalf("Poll(wait=%s) against a hung Redis succeeded", wait)
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	id := add(t, c, "orders", "*", "data", "after")
	got := poll(t, s, 1)
	if got[0].ID != id {
		t.Fatalf("after resume got %v, want %s", ids(got), id)
	}
}

func TestCancelledContextEndsABlockingPoll(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders"})
	pollOnce(t, s, 10, 0)

	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		recs []*sources.Record
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		recs, err := s.Poll(ctx, 10, time.Hour)
		ch <- result{recs, err}
	}()
	gatewaytest.Eventually(t, within, func() bool {
		list, err := c.ClientList(context.Background()).Result()
		return err == nil && strings.Contains(list, "cmd=xreadgroup")
	}, "the source blocked in XREADGROUP")
	cancel()
	select {
	case r := <-ch:
		if r.err != nil || len(r.recs) != 0 {
			t.Fatalf("cancelled Poll = %v, %v; want nothing", ids(r.recs), r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Poll ignored the cancelled context")
	}
}

// Without filters no record carries a Filter view: nothing would read it.
func TestNoFilterViewWithoutFilters(t *testing.T) {
	url := redistest.Start(t)
	c := admin(t, url)
	s := open(t, setup{url: url, stream: "orders", from: "TRIM_HORIZON", noFilters: true})
	id := add(t, c, "orders", "*", "data", `{"a":1}`)
	recs := poll(t, s, 1)
	if recs[0].ID != id || recs[0].Filter != nil {
		t.Fatalf("record %s has filter view %#v, want none", recs[0].ID, recs[0].Filter)
	}
}
