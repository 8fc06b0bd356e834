package invokeapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// DeriveSecret returns the invoke secret of one function version, derived
// from a cluster key the compiler and the gateways share. Deriving it (rather
// than storing it) keeps it out of job meta and the catalog, and lets any
// gateway with the key call any instance.
func DeriveSecret(key []byte, function, version string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("nimbus-invoke\x00"))
	m.Write([]byte(function))
	m.Write([]byte{0})
	m.Write([]byte(version))
	return hex.EncodeToString(m.Sum(nil))
}
