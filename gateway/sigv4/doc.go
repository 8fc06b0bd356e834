// Package sigv4 verifies AWS Signature Version 4 on incoming requests (the
// Invoke API and AWS_IAM function URLs). It recomputes the signature with
// aws-sdk-go-v2's own v4 signer over a copy of the request that carries only
// the headers the client signed, so canonicalisation is exactly the SDK's,
// and compares in constant time. Query-string (presigned) signatures are not
// accepted. A Verifier may also accept a session the gateway issued (the
// console's login cookie) through its Sessions hook, so that every route
// authenticates in this one place.
//
// It imports nothing from this module.
package sigv4
