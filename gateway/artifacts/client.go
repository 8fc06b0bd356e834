package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client uploads bundles to a gateway's artifact store (the CLI's side).
type Client struct {
	// BaseURL is the gateway, e.g. http://127.0.0.1:9000.
	BaseURL string
	// HTTP is the client to use. Default http.DefaultClient.
	HTTP *http.Client
	// Sign, when set, signs each upload (SigV4 over the body's sha256).
	Sign func(ctx context.Context, r *http.Request, payloadSHA256 string) error
}

// URL is where a bundle is served.
func (c *Client) URL(digest string) string {
	return strings.TrimRight(c.BaseURL, "/") + Path + digest + ".zip"
}

// Upload stores data and returns its address and whether it was new.
func (c *Client) Upload(ctx context.Context, data []byte) (UploadResult, error) {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.URL(digest), bytes.NewReader(data))
	if err != nil {
		return UploadResult{}, err
	}
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("X-Amz-Content-Sha256", digest)
	if c.Sign != nil {
		if err := c.Sign(ctx, req, digest); err != nil {
			return UploadResult{}, fmt.Errorf("signing the upload: %w", err)
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return UploadResult{}, fmt.Errorf("uploading bundle %s: %w", digest, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var e errorBody
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return UploadResult{}, fmt.Errorf("uploading bundle %s: %s (%s)", digest, e.Message, e.Code)
		}
		return UploadResult{}, fmt.Errorf("uploading bundle %s: %s", digest, resp.Status)
	}
	var out UploadResult
	if err := json.Unmarshal(body, &out); err != nil {
		return UploadResult{}, fmt.Errorf("uploading bundle %s: reading the answer: %w", digest, err)
	}
	if out.SHA256 != digest {
		return UploadResult{}, fmt.Errorf("uploading bundle %s: the store answered %s", digest, out.SHA256)
	}
	return out, nil
}
