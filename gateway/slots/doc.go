// Package slots holds a function's reserved concurrency across every
// gateway attached to one NATS system, as leases in a JetStream KV bucket.
//
// # Why leases in NATS, not a split of the reservation
//
// Two designs were weighed. Splitting the reservation between the live
// gateways (each admits its floor/ceil share) costs no round trip, but it
// needs a membership view every gateway agrees on, it refuses work on a
// busy gateway while another's share sits idle (a reservation of 2 over
// three gateways leaves one gateway with none), and during every
// membership change two views of the split can over-admit. A shared count
// in JetStream KV is exact: the NATS system the gateways already share for
// the async queue decides, with its own compare-and-set, and a dead
// gateway's slots lapse by the server's clock, not by the gateways'. It
// costs a KV write per admitted invocation of a function with reserved
// concurrency (and one to release it), which is small next to an
// invocation; functions without a reservation pay nothing unless the
// account's unreserved pool is shared too (the gateway's
// share_account_concurrency: its slots go by the name "=unreserved", which
// no function can have). This package is that design.
//
// # Slots and leases
//
// A function with reserved concurrency R has the keys "<function>.0" …
// "<function>.<R-1>" in the bucket (Config.Bucket, default
// nimbus_concurrency, created when absent: history 1, file storage, and
// max age = Config.Lease). Acquire takes a free one with Create, which
// succeeds only when the key holds no value, trying the slots from a random
// one on; when every one of the R is taken it answers "full" and the
// gateway answers 429 TooManyRequestsException. The value names the
// holder (Config.Owner) for operators. Release deletes the key at the
// revision the holder last wrote, so it never frees a slot someone else
// holds.
//
// A slot is a lease: the bucket's max age removes a value Lease after it
// was last written. Run rewrites each held slot every Lease/3 (a
// check-and-set on its revision), so an invocation keeps its slot however
// long it runs; a gateway that dies stops rewriting and its slots free
// themselves within Lease, measured by the NATS server. Lowering a
// reservation takes effect as the slots above it are released.
//
// # Bounds
//
//   - Never more than R invocations hold a slot at once. An invocation
//     can run without one only if its gateway cannot reach NATS for a whole
//     Lease while it runs (its lease lapses and another gateway takes the
//     slot): that is the one window of over-admission, bounded by the
//     invocation's own timeout. Run logs it and tries to take the slot back.
//   - NATS unreachable at admission: Acquire fails and the invocation is
//     refused (the router answers an error, never admits unchecked).
//   - A gateway that dies mid-invocation cannot stop the invocation: the
//     instance runs it to its end, while its slot is free again Lease
//     after the gateway's last renewal. If it runs on longer than that,
//     R+1 can run for the rest of it (at most its function timeout). A
//     longer lease narrows this; the price is slower recovery.
//   - A full scan costs up to R round trips before a 429, only when the
//     gateway itself is below R and all R are taken elsewhere; after one,
//     Acquire answers "full" without asking for Config.FullFor (default
//     50ms), so a flood against a saturated function costs one scan per
//     FullFor. That can refuse, never admit, for that long after another
//     gateway frees a slot.
//
// It may import third-party modules only.
package slots
