package sigv4

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	// UnsignedPayload is the X-Amz-Content-Sha256 value of a client that did
	// not hash the body.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
)

// Error codes, as AWS's front door names them. Each is answered with 403
// except IncompleteSignature (400).
const (
	CodeMissingToken        = "MissingAuthenticationTokenException"
	CodeIncompleteSignature = "IncompleteSignatureException"
	CodeUnrecognizedClient  = "UnrecognizedClientException"
	CodeInvalidSignature    = "InvalidSignatureException"
)

// Error is a verification failure.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status AWS uses for the code.
func (e *Error) Status() int {
	if e.Code == CodeIncompleteSignature {
		return http.StatusBadRequest
	}
	return http.StatusForbidden
}

// Verifier checks signatures against a set of access keys.
type Verifier struct {
	// Keys maps access key ids to secret keys.
	Keys map[string]string
	// Region the credential scope must name.
	Region string
	// Service the credential scope must name. Default "lambda".
	Service string
	// MaxSkew is the largest accepted distance between X-Amz-Date and now.
	// Default 5m (AWS's value).
	MaxSkew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Sessions, when set, authenticates a request that carries no
	// Authorization header by a credential the gateway issued itself (the
	// console's login sessions). Verify then answers the session's access
	// key as the identity, so every route's scope checks apply unchanged.
	Sessions Sessions
}

// Sessions identifies a request by a session the gateway issued.
type Sessions interface {
	// Identify answers ok=false when r carries no session; otherwise the
	// session's identity, or an *Error when the session is unknown,
	// expired or the request fails its CSRF check.
	Identify(r *http.Request) (id *Identity, ok bool, err error)
}

// Identity is the verified caller.
type Identity struct {
	AccessKeyID string
}

type authHeader struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(h string) (*authHeader, error) {
	if h == "" {
		return nil, &Error{CodeMissingToken, "Missing Authentication Token"}
	}
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return nil, &Error{CodeIncompleteSignature, "Unsupported authorization type; only " + algorithm + " is accepted."}
	}
	a := &authHeader{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return nil, &Error{CodeIncompleteSignature, "Authorization header has a malformed Credential."}
			}
			a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKey == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return nil, &Error{CodeIncompleteSignature, "Authorization header requires Credential, SignedHeaders and Signature."}
	}
	return a, nil
}

// Verify checks r's signature, or, when Sessions is set and r has no
// Authorization header, the session r carries (a request with neither is
// refused as unsigned). body is the complete request body (the caller has
// read it; it is hashed unless the client declared UNSIGNED-PAYLOAD).
func (v *Verifier) Verify(r *http.Request, body []byte) (*Identity, error) {
	if v.Sessions != nil && r.Header.Get("Authorization") == "" {
		if id, ok, err := v.Sessions.Identify(r); ok {
			return id, err
		}
	}
	return v.VerifySignature(r, body)
}

// VerifySignature checks r's SigV4 signature only (never a session): for
// callers a session must not reach, such as AWS_IAM function URLs.
func (v *Verifier) VerifySignature(r *http.Request, body []byte) (*Identity, error) {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	service := v.Service
	if service == "" {
		service = "lambda"
	}
	secret, ok := v.Keys[a.accessKey]
	if !ok {
		return nil, &Error{CodeUnrecognizedClient, "The security token included in the request is invalid."}
	}
	if a.service != service || a.region != v.Region {
		return nil, &Error{CodeInvalidSignature, fmt.Sprintf("Credential should be scoped to a valid region and service %q, not %q/%q.", v.Region+"/"+service, a.region, a.service)}
	}
	signedAt, err := time.Parse(timeFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, &Error{CodeIncompleteSignature, "X-Amz-Date is missing or not in the form 20060102T150405Z."}
	}
	if signedAt.Format("20060102") != a.date {
		return nil, &Error{CodeInvalidSignature, "Credential date does not match X-Amz-Date."}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	if d := now().Sub(signedAt); d > skew || d < -skew {
		return nil, &Error{CodeInvalidSignature, fmt.Sprintf("Signature expired: %s is not within %s of the server time %s.",
			signedAt.Format(timeFormat), skew, now().UTC().Format(timeFormat))}
	}

	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	payloadHash := actual
	if declared := r.Header.Get("X-Amz-Content-Sha256"); declared != "" {
		if declared != UnsignedPayload && declared != actual {
			return nil, &Error{CodeInvalidSignature, "The provided X-Amz-Content-Sha256 header does not match the computed hash of the body."}
		}
		payloadHash = declared
	}

	// Rebuild the request with exactly the signed headers, then let the
	// SDK's signer compute what the signature should be.
	u := &url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	cp, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return nil, &Error{CodeIncompleteSignature, "request URL cannot be canonicalised"}
	}
	cp.URL.RawPath = r.URL.RawPath
	cp.URL.Path = r.URL.Path
	cp.Host = r.Host
	cp.Header = http.Header{}
	var token string
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			cp.ContentLength = r.ContentLength
			if cp.ContentLength < 0 {
				cp.ContentLength = int64(len(body))
			}
		case "x-amz-security-token":
			token = r.Header.Get(name)
		default:
			if vals, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
				cp.Header[http.CanonicalHeaderKey(name)] = vals
			}
		}
	}
	creds := aws.Credentials{AccessKeyID: a.accessKey, SecretAccessKey: secret, SessionToken: token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, cp, payloadHash, a.service, a.region, signedAt); err != nil {
		return nil, &Error{CodeInvalidSignature, "signature cannot be recomputed"}
	}
	want, err := parseAuthorization(cp.Header.Get("Authorization"))
	if err != nil {
		return nil, &Error{CodeInvalidSignature, "signature cannot be recomputed"}
	}
	if strings.Join(want.signedHeaders, ";") != strings.Join(a.signedHeaders, ";") ||
		subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return nil, &Error{CodeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return &Identity{AccessKeyID: a.accessKey}, nil
}
