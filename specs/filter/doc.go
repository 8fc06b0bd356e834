// Package filter is Lambda's event-filtering pattern language (the
// EventBridge pattern grammar): Compile checks a pattern and reports where
// it is wrong, Match decides whether a record passes. Spec validation uses
// it to reject bad `filters`; the event-source engine uses it to drop
// records no filter matches.
//
// It is a leaf: it imports only the standard library and no package of
// this module.
//
// # Grammar
//
// A pattern is a JSON object of at most MaxPatternBytes (4096) bytes.
// Each key names a key of the record; its value is either a nested object,
// which descends into the record, or a non-empty array of matchers. All
// keys of an object must match (AND); one matcher of an array suffices
// (OR). "$or" takes an array of at least two pattern objects, one of which
// must match the same record object; it may appear at any level beside
// other keys.
//
//	{"body": {"kind": ["order", "refund"], "size": [{"numeric": [">", 0, "<=", 5]}]}}
//	{"$or": [{"kind": ["order"]}, {"size": [{"numeric": [">", 100]}]}]}
//
// Matchers:
//
//	"x", 5, true, null          exact value of the same JSON type ("5" never matches 5; "" matches "")
//	{"prefix": "x"}             string starting with x
//	{"suffix": "x"}             string ending with x
//	{"prefix": {"equals-ignore-case": "x"}}, and the same for suffix
//	{"equals-ignore-case": "x"} string equal to x under Unicode case folding
//	{"wildcard": "a*b"}         string matching; * is any run of characters,
//	                            \* and \\ are a literal * and \, ** is an error
//	{"anything-but": ...}       a value the operand does not match; the
//	                            operand is a string, a number, a list of
//	                            only strings or only numbers, or one of
//	                            {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": "x"}
//	{"numeric": [op, n]}        number compared with n; op is =, <, <=, > or >=;
//	{"numeric": [">", a, "<", b]} a range: a lower bound (> or >=) then an
//	                            upper bound (< or <=), and a non-empty one
//	{"exists": true|false}      the key holds / does not hold a value
//
// # Matching
//
//   - String matchers match only strings and numeric only numbers (float64
//     comparison); an object value never matches a leaf matcher.
//   - When the record holds an array, a matcher matches if any element
//     does (nested arrays are flattened). So ["a","b"] matches ["a"], and
//     also {"anything-but": "a"}, because of "b".
//   - A nested pattern object matches when the record value is an object
//     that matches, or an array with an element object that matches (all
//     keys of the nested pattern against the same element). A value with
//     no object in it is matched as an empty object, so only patterns
//     made of {"exists": false} pass it.
//   - exists looks at leaf values, as in EventBridge: true when the key is
//     present with a non-object value (null counts, as does an array with
//     at least one non-object element); exists:false is the opposite. A
//     key holding an object or an empty array does not "exist".
//   - anything-but needs a value: it never matches an absent key, and it
//     matches every non-object value (null, booleans, other types) that
//     its operand does not match.
//
// # Limits
//
// Besides the size limit, pattern objects nest at most MaxDepth (10)
// deep, counting the top object and each nested object or $or branch as
// one, and a pattern holds at most MaxMatchers (256) matchers: each
// element of a matcher array counts one and an anything-but list one per
// value. Duplicate keys in one object are errors. A Set holds at most
// MaxFilters (5) patterns.
//
// Errors are *Error values with a lowercase message led by the quoted key
// path ("body.size", "$or[1].kind") and the byte offset of the offending
// JSON in the pattern, for the spec layer to turn into file:line:col.
// The cidr matcher of EventBridge is not supported.
package filter
