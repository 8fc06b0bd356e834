package sigv4_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

var signedAt = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func signed(t *testing.T, target, body, secret string) *http.Request {
	t.Helper()
	// Sign as a client would, then rebuild the request as a server sees it.
	out, _ := http.NewRequest(http.MethodPost, "http://gw.local:9000"+target, strings.NewReader(body))
	out.Header.Set("Content-Type", "application/octet-stream")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: secret},
		out, hex.EncodeToString(sum[:]), "lambda", "us-east-1", signedAt); err != nil {
		t.Fatal(err)
	}
	in := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	in.Host = "gw.local:9000"
	in.Header = out.Header.Clone()
	return in
}

func verifier() *sigv4.Verifier {
	return &sigv4.Verifier{Keys: map[string]string{"AKID": "s3cret"}, Region: "us-east-1",
		Now: func() time.Time { return signedAt.Add(time.Minute) }}
}

func code(err error) string {
	var e *sigv4.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestVerify(t *testing.T) {
	const path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aok%3Aprod/invocations?Qualifier=prod"
	body := `{"a":1}`
	id, err := verifier().Verify(signed(t, path, body, "s3cret"), []byte(body))
	if err != nil || id.AccessKeyID != "AKID" {
		t.Fatalf("valid signature refused: %v", err)
	}
	cases := []struct {
		name string
		req  *http.Request
		body string
		v    *sigv4.Verifier
		want string
	}{
		{"tampered body", signed(t, path, body, "s3cret"), `{"a":2}`, verifier(), sigv4.CodeInvalidSignature},
		{"wrong secret", signed(t, path, body, "other"), body, verifier(), sigv4.CodeInvalidSignature},
		{"tampered path", func() *http.Request {
			r := signed(t, path, body, "s3cret")
			r.URL.RawQuery = "Qualifier=1"
			return r
		}(), body, verifier(), sigv4.CodeInvalidSignature},
		{"clock skew", signed(t, path, body, "s3cret"), body, &sigv4.Verifier{Keys: map[string]string{"AKID": "s3cret"}, Region: "us-east-1",
			Now: func() time.Time { return signedAt.Add(6 * time.Minute) }}, sigv4.CodeInvalidSignature},
		{"other region", signed(t, path, body, "s3cret"), body, &sigv4.Verifier{Keys: map[string]string{"AKID": "s3cret"}, Region: "eu-west-1",
			Now: func() time.Time { return signedAt }}, sigv4.CodeInvalidSignature},
		{"unknown key", signed(t, path, body, "s3cret"), body, &sigv4.Verifier{Keys: map[string]string{"OTHER": "x"}, Region: "us-east-1"}, sigv4.CodeUnrecognizedClient},
		{"missing", httptest.NewRequest(http.MethodPost, path, nil), "", verifier(), sigv4.CodeMissingToken},
	}
	for _, tc := range cases {
		if _, err := tc.v.Verify(tc.req, []byte(tc.body)); code(err) != tc.want {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
		}
	}
}
