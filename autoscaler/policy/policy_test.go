package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	cases := []struct {
		in   string
		want Query
		err  string
	}{
		{in: "orders/3", want: Query{MetricUtilization, "orders", "3"}},
		{in: "orders/$LATEST", want: Query{MetricUtilization, "orders", "$LATEST"}},
		{in: " utilization:orders/3 ", want: Query{MetricUtilization, "orders", "3"}},
		{in: "in_flight:orders/3", want: Query{MetricInFlight, "orders", "3"}},
		{in: "environments:my_fn-2/12", want: Query{MetricEnvironments, "my_fn-2", "12"}},
		{in: "orders", err: "want [<metric>:]<function>/<version>"},
		{in: "orders/", err: "want [<metric>:]<function>/<version>"},
		{in: "/3", err: "want [<metric>:]<function>/<version>"},
		{in: "a/b/c", err: "want [<metric>:]<function>/<version>"},
		{in: "cpu:orders/3", err: `unknown metric "cpu"`},
		{in: "", err: "want [<metric>:]<function>/<version>"},
	}
	for _, c := range cases {
		got, err := ParseQuery(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrBadQuery) {
				t.Errorf("ParseQuery(%q) error = %v, want one containing %q wrapping ErrBadQuery", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseQuery(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		back, err := ParseQuery(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q via %q = %+v, %v", c.in, got.String(), back, err)
		}
	}
}

func TestSchedulesRoundTrip(t *testing.T) {
	in := []Schedule{
		{Name: "business-hours", Cron: "0 8 * * 1-5", Duration: "10h", Timezone: "Europe/Berlin", Min: 10},
		{Name: "batch", Cron: "30 1 * * *", Duration: "45m", Min: 4},
	}
	v, err := EncodeSchedules(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"business-hours","cron":"0 8 * * 1-5","duration":"10h","timezone":"Europe/Berlin","min":10},{"name":"batch","cron":"30 1 * * *","duration":"45m","min":4}]`
	if v != want {
		t.Errorf("EncodeSchedules = %s\nwant %s", v, want)
	}
	out, err := DecodeSchedules(v)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Errorf("DecodeSchedules = %+v, %v", out, err)
	}
	if s, err := EncodeSchedules(nil); s != "" || err != nil {
		t.Errorf("EncodeSchedules(nil) = %q, %v", s, err)
	}
	for _, empty := range []string{"", "  ", "[]"} {
		if s, err := DecodeSchedules(empty); len(s) != 0 || err != nil {
			t.Errorf("DecodeSchedules(%q) = %v, %v", empty, s, err)
		}
	}
	for _, bad := range []string{`{"cron":"x"}`, `[{"crn":"0 8 * * *"}]`, `[] []`, `[{"min":"3"}]`} {
		if _, err := DecodeSchedules(bad); err == nil || !strings.Contains(err.Error(), "schedules") {
			t.Errorf("DecodeSchedules(%q) error = %v", bad, err)
		}
	}
}
