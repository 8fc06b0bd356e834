package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/internal/redistest"
)

func init() {
	templateCases["rest-api-redis"] = templateCase{setup: restAPISetup, verify: restAPIVerify}
}

// restAPISetup starts a real redis-server; the pipeline's tests and the
// deployed functions both use it.
func restAPISetup(t *testing.T) map[string]string {
	return map[string]string{"REDIS_URL": redistest.Start(t)}
}

// restAPIVerify creates an item through demo-create:live (a signed Invoke
// with a function URL event), reads it back through demo-get's function
// URL (public, unsigned) and finds it in the Redis hash the spec names.
func restAPIVerify(t *testing.T, g *versionsGateway, _ string, env map[string]string, live map[string]string) {
	ev := `{"version":"2.0","rawPath":"/","body":"{\"name\":\"tea\",\"data\":{\"qty\":2}}","isBase64Encoded":false,` +
		`"requestContext":{"http":{"method":"POST","path":"/"}}}`
	var created struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(invokeLive(t, g, "demo-create", live["demo-create"], []byte(ev)), &created); err != nil || created.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %+v", err, created)
	}
	var item struct{ ID, Name string }
	if err := json.Unmarshal([]byte(created.Body), &item); err != nil || item.ID == "" || item.Name != "tea" {
		t.Fatalf("created item: %v %s", err, created.Body)
	}
	resp, err := http.Get(g.base + "/url/demo-get/?id=" + item.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct{ ID, Name string }
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusOK || got.ID != item.ID || got.Name != "tea" {
		t.Fatalf("GET demo-get's URL: %d %s", resp.StatusCode, body)
	}
	// demo-delete's URL is AWS_IAM: unsigned, it is refused.
	req, _ := http.NewRequest(http.MethodDelete, g.base+"/url/demo-delete/?id="+item.ID, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned DELETE on an AWS_IAM URL: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	opts, err := redis.ParseURL(env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	raw, err := rdb.HGet(context.Background(), "demo:items", item.ID).Result()
	if err != nil || !json.Valid([]byte(raw)) {
		t.Fatalf("the item in Redis hash demo:items: %v %q", err, raw)
	}
}
