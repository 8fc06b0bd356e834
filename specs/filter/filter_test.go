package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test record %s: %v", s, err)
	}
	return m
}

type matchCase struct {
	name    string
	pattern string
	rec     string
	want    bool
}

var matchCases = []matchCase{
	// Exact values.
	{"string equal", `{"a":["x"]}`, `{"a":"x"}`, true},
	{"string differs", `{"a":["x"]}`, `{"a":"y"}`, false},
	{"string case differs", `{"a":["x"]}`, `{"a":"X"}`, false},
	{"string absent", `{"a":["x"]}`, `{"b":"x"}`, false},
	{"string or second", `{"a":["x","y"]}`, `{"a":"y"}`, true},
	{"string vs number", `{"a":["5"]}`, `{"a":5}`, false},
	{"number vs string", `{"a":[5]}`, `{"a":"5"}`, false},
	{"number equal", `{"a":[5]}`, `{"a":5}`, true},
	{"number equal other spelling", `{"a":[5.0]}`, `{"a":5e0}`, true},
	{"number differs", `{"a":[5]}`, `{"a":6}`, false},
	{"bool true", `{"a":[true]}`, `{"a":true}`, true},
	{"bool false vs true", `{"a":[false]}`, `{"a":true}`, false},
	{"bool vs string", `{"a":[true]}`, `{"a":"true"}`, false},
	{"null matches null", `{"a":[null]}`, `{"a":null}`, true},
	{"null vs absent", `{"a":[null]}`, `{}`, false},
	{"null vs empty string", `{"a":[null]}`, `{"a":""}`, false},
	{"empty string", `{"a":[""]}`, `{"a":""}`, true},
	{"empty string vs null", `{"a":[""]}`, `{"a":null}`, false},
	{"empty string vs text", `{"a":[""]}`, `{"a":"x"}`, false},
	{"object value never matches leaf", `{"a":["x"]}`, `{"a":{"x":"x"}}`, false},
	{"unicode exact", `{"a":["h\u00e9"]}`, `{"a":"hé"}`, true},

	// AND across keys.
	{"and both", `{"a":["x"],"b":[1]}`, `{"a":"x","b":1}`, true},
	{"and one fails", `{"a":["x"],"b":[1]}`, `{"a":"x","b":2}`, false},
	{"and one absent", `{"a":["x"],"b":[1]}`, `{"a":"x"}`, false},

	// prefix / suffix.
	{"prefix", `{"a":[{"prefix":"us-"}]}`, `{"a":"us-east-1"}`, true},
	{"prefix no", `{"a":[{"prefix":"us-"}]}`, `{"a":"eu-west-1"}`, false},
	{"prefix whole", `{"a":[{"prefix":"us-"}]}`, `{"a":"us-"}`, true},
	{"prefix longer than value", `{"a":[{"prefix":"us-"}]}`, `{"a":"us"}`, false},
	{"prefix case", `{"a":[{"prefix":"us-"}]}`, `{"a":"US-east"}`, false},
	{"prefix on number", `{"a":[{"prefix":"1"}]}`, `{"a":12}`, false},
	{"prefix on null", `{"a":[{"prefix":"n"}]}`, `{"a":null}`, false},
	{"prefix empty matches any string", `{"a":[{"prefix":""}]}`, `{"a":"q"}`, true},
	{"prefix ignore case", `{"a":[{"prefix":{"equals-ignore-case":"EventB"}}]}`, `{"a":"eventbridge"}`, true},
	{"prefix ignore case no", `{"a":[{"prefix":{"equals-ignore-case":"EventB"}}]}`, `{"a":"event-bridge"}`, false},
	{"prefix ignore case multibyte", `{"a":[{"prefix":{"equals-ignore-case":"ÉC"}}]}`, `{"a":"école"}`, true},
	{"prefix ignore case short value", `{"a":[{"prefix":{"equals-ignore-case":"abc"}}]}`, `{"a":"AB"}`, false},
	{"suffix", `{"a":[{"suffix":".png"}]}`, `{"a":"cat.png"}`, true},
	{"suffix no", `{"a":[{"suffix":".png"}]}`, `{"a":"cat.png.gz"}`, false},
	{"suffix case", `{"a":[{"suffix":".png"}]}`, `{"a":"cat.PNG"}`, false},
	{"suffix ignore case", `{"a":[{"suffix":{"equals-ignore-case":".png"}}]}`, `{"a":"cat.PNG"}`, true},
	{"suffix ignore case no", `{"a":[{"suffix":{"equals-ignore-case":".png"}}]}`, `{"a":"cat.jpg"}`, false},
	{"suffix on bool", `{"a":[{"suffix":"e"}]}`, `{"a":true}`, false},

	// equals-ignore-case.
	{"eic", `{"a":[{"equals-ignore-case":"Alice"}]}`, `{"a":"aLICE"}`, true},
	{"eic no", `{"a":[{"equals-ignore-case":"Alice"}]}`, `{"a":"Alicia"}`, false},
	{"eic unicode", `{"a":[{"equals-ignore-case":"straße"}]}`, `{"a":"STRAßE"}`, true},
	{"eic on number", `{"a":[{"equals-ignore-case":"5"}]}`, `{"a":5}`, false},

	// wildcard.
	{"wildcard middle", `{"a":[{"wildcard":"dir/*.png"}]}`, `{"a":"dir/cat.png"}`, true},
	{"wildcard middle empty run", `{"a":[{"wildcard":"dir/*.png"}]}`, `{"a":"dir/.png"}`, true},
	{"wildcard middle no", `{"a":[{"wildcard":"dir/*.png"}]}`, `{"a":"dir/cat.jpg"}`, false},
	{"wildcard two stars", `{"a":[{"wildcard":"*/lib/*"}]}`, `{"a":"usr/lib/x"}`, true},
	{"wildcard two stars no", `{"a":[{"wildcard":"*/lib/*"}]}`, `{"a":"usr/lib"}`, false},
	{"wildcard many pieces", `{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"axxbyybzzc"}`, true},
	{"wildcard pieces out of order", `{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"acb"}`, false},
	{"wildcard overlap of ends", `{"a":[{"wildcard":"ab*ba"}]}`, `{"a":"aba"}`, false},
	{"wildcard star only", `{"a":[{"wildcard":"*"}]}`, `{"a":""}`, true},
	{"wildcard no star is exact", `{"a":[{"wildcard":"abc"}]}`, `{"a":"abc"}`, true},
	{"wildcard no star is exact no", `{"a":[{"wildcard":"abc"}]}`, `{"a":"abcd"}`, false},
	{"wildcard escaped star", `{"a":[{"wildcard":"a\\*b"}]}`, `{"a":"a*b"}`, true},
	{"wildcard escaped star is literal", `{"a":[{"wildcard":"a\\*b"}]}`, `{"a":"axb"}`, false},
	{"wildcard escaped backslash", `{"a":[{"wildcard":"a\\\\*"}]}`, `{"a":"a\\zz"}`, true},
	{"wildcard on number", `{"a":[{"wildcard":"*"}]}`, `{"a":1}`, false},

	// anything-but.
	{"anything-but string", `{"a":[{"anything-but":"x"}]}`, `{"a":"y"}`, true},
	{"anything-but string no", `{"a":[{"anything-but":"x"}]}`, `{"a":"x"}`, false},
	{"anything-but list", `{"a":[{"anything-but":["x","y"]}]}`, `{"a":"z"}`, true},
	{"anything-but list no", `{"a":[{"anything-but":["x","y"]}]}`, `{"a":"y"}`, false},
	{"anything-but number", `{"a":[{"anything-but":5}]}`, `{"a":6}`, true},
	{"anything-but number no", `{"a":[{"anything-but":5}]}`, `{"a":5}`, false},
	{"anything-but number list no", `{"a":[{"anything-but":[1,2]}]}`, `{"a":2}`, false},
	{"anything-but string vs number 5", `{"a":[{"anything-but":"5"}]}`, `{"a":5}`, true},
	{"anything-but absent", `{"a":[{"anything-but":"x"}]}`, `{}`, false},
	{"anything-but null value", `{"a":[{"anything-but":"x"}]}`, `{"a":null}`, true},
	{"anything-but object value", `{"a":[{"anything-but":"x"}]}`, `{"a":{"b":1}}`, false},
	{"anything-but prefix", `{"a":[{"anything-but":{"prefix":"us-"}}]}`, `{"a":"eu-west"}`, true},
	{"anything-but prefix no", `{"a":[{"anything-but":{"prefix":"us-"}}]}`, `{"a":"us-east"}`, false},
	{"anything-but suffix", `{"a":[{"anything-but":{"suffix":".png"}}]}`, `{"a":"x.jpg"}`, true},
	{"anything-but suffix no", `{"a":[{"anything-but":{"suffix":".png"}}]}`, `{"a":"x.png"}`, false},
	{"anything-but eic", `{"a":[{"anything-but":{"equals-ignore-case":"init"}}]}`, `{"a":"running"}`, true},
	{"anything-but eic no", `{"a":[{"anything-but":{"equals-ignore-case":"init"}}]}`, `{"a":"INIT"}`, false},
	{"anything-but wildcard", `{"a":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, `{"a":"/usr/bin/x"}`, true},
	{"anything-but wildcard no", `{"a":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, `{"a":"/usr/lib/x"}`, false},
	{"anything-but prefix number", `{"a":[{"anything-but":{"prefix":"1"}}]}`, `{"a":12}`, true},

	// numeric.
	{"numeric =", `{"a":[{"numeric":["=",100]}]}`, `{"a":100}`, true},
	{"numeric = no", `{"a":[{"numeric":["=",100]}]}`, `{"a":100.5}`, false},
	{"numeric <", `{"a":[{"numeric":["<",0]}]}`, `{"a":-0.5}`, true},
	{"numeric < boundary", `{"a":[{"numeric":["<",0]}]}`, `{"a":0}`, false},
	{"numeric <=", `{"a":[{"numeric":["<=",0]}]}`, `{"a":0}`, true},
	{"numeric >", `{"a":[{"numeric":[">",10]}]}`, `{"a":10.0001}`, true},
	{"numeric > boundary", `{"a":[{"numeric":[">",10]}]}`, `{"a":10}`, false},
	{"numeric >=", `{"a":[{"numeric":[">=",10]}]}`, `{"a":10}`, true},
	{"numeric range inside", `{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":5}`, true},
	{"numeric range low edge", `{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":0}`, false},
	{"numeric range above", `{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":5.01}`, false},
	{"numeric range inclusive point", `{"a":[{"numeric":[">=",3,"<=",3]}]}`, `{"a":3}`, true},
	{"numeric on string", `{"a":[{"numeric":[">",0]}]}`, `{"a":"5"}`, false},
	{"numeric on null", `{"a":[{"numeric":["<",1]}]}`, `{"a":null}`, false},
	{"numeric absent", `{"a":[{"numeric":[">",0]}]}`, `{}`, false},
	{"numeric exponent", `{"a":[{"numeric":[">",1e3]}]}`, `{"a":1001}`, true},

	// exists.
	{"exists true present", `{"a":[{"exists":true}]}`, `{"a":"x"}`, true},
	{"exists true absent", `{"a":[{"exists":true}]}`, `{}`, false},
	{"exists true null", `{"a":[{"exists":true}]}`, `{"a":null}`, true},
	{"exists true empty string", `{"a":[{"exists":true}]}`, `{"a":""}`, true},
	{"exists true object", `{"a":[{"exists":true}]}`, `{"a":{"b":1}}`, false},
	{"exists true array", `{"a":[{"exists":true}]}`, `{"a":[1]}`, true},
	{"exists true empty array", `{"a":[{"exists":true}]}`, `{"a":[]}`, false},
	{"exists false absent", `{"a":[{"exists":false}]}`, `{"b":1}`, true},
	{"exists false present", `{"a":[{"exists":false}]}`, `{"a":1}`, false},
	{"exists false null", `{"a":[{"exists":false}]}`, `{"a":null}`, false},
	{"exists false empty array", `{"a":[{"exists":false}]}`, `{"a":[]}`, true},
	{"exists false nested parent absent", `{"a":{"b":[{"exists":false}]}}`, `{}`, true},
	{"exists false nested parent scalar", `{"a":{"b":[{"exists":false}]}}`, `{"a":"s"}`, true},
	{"exists false nested present", `{"a":{"b":[{"exists":false}]}}`, `{"a":{"b":0}}`, false},
	{"exists true nested", `{"a":{"b":[{"exists":true}]}}`, `{"a":{"b":0}}`, true},
	{"exists true nested parent absent", `{"a":{"b":[{"exists":true}]}}`, `{}`, false},
	{"exists or value", `{"a":[{"exists":false},"x"]}`, `{"a":"x"}`, true},
	{"exists or value absent", `{"a":[{"exists":false},"x"]}`, `{}`, true},
	{"exists or value other", `{"a":[{"exists":false},"x"]}`, `{"a":"y"}`, false},

	// Nesting.
	{"nested", `{"body":{"kind":["order"]}}`, `{"body":{"kind":"order"}}`, true},
	{"nested no", `{"body":{"kind":["order"]}}`, `{"body":{"kind":"refund"}}`, false},
	{"nested parent absent", `{"body":{"kind":["order"]}}`, `{"kind":"order"}`, false},
	{"nested parent is string", `{"body":{"kind":["order"]}}`, `{"body":"order"}`, false},
	{"nested deep", `{"a":{"b":{"c":{"d":[1]}}}}`, `{"a":{"b":{"c":{"d":1,"e":2}}}}`, true},
	{"nested deep no", `{"a":{"b":{"c":{"d":[1]}}}}`, `{"a":{"b":{"c":{"e":1}}}}`, false},
	{"leaf pattern on object value", `{"a":[1]}`, `{"a":{"a":1}}`, false},

	// Arrays in records.
	{"array any element", `{"a":["x"]}`, `{"a":["w","x"]}`, true},
	{"array no element", `{"a":["x"]}`, `{"a":["w","y"]}`, false},
	{"array empty", `{"a":["x"]}`, `{"a":[]}`, false},
	{"array nested arrays", `{"a":[3]}`, `{"a":[[1],[2,[3]]]}`, true},
	{"array numeric", `{"a":[{"numeric":[">",10]}]}`, `{"a":[1,2,30]}`, true},
	{"array prefix", `{"a":[{"prefix":"b"}]}`, `{"a":["ab",1,"bc"]}`, true},
	{"array anything-but other element", `{"a":[{"anything-but":"x"}]}`, `{"a":["x","y"]}`, true},
	{"array anything-but all excluded", `{"a":[{"anything-but":"x"}]}`, `{"a":["x","x"]}`, false},
	{"array of objects", `{"a":{"b":["x"]}}`, `{"a":[{"b":"w"},{"b":"x"}]}`, true},
	{"array of objects no", `{"a":{"b":["x"]}}`, `{"a":[{"b":"w"},{"c":"x"}]}`, false},
	{"array of objects same element", `{"a":{"b":["x"],"c":[1]}}`, `{"a":[{"b":"x","c":2},{"b":"y","c":1}]}`, false},
	{"array of objects same element yes", `{"a":{"b":["x"],"c":[1]}}`, `{"a":[{"b":"y","c":1},{"b":"x","c":1}]}`, true},
	{"array of scalars under nested", `{"a":{"b":["x"]}}`, `{"a":["x"]}`, false},

	// $or.
	{"or first", `{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"a":"x"}`, true},
	{"or second", `{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"b":"y"}`, true},
	{"or neither", `{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"a":"y","b":"x"}`, false},
	{"or and key", `{"c":[1],"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"c":1,"b":"y"}`, true},
	{"or and key fails", `{"c":[1],"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"c":2,"b":"y"}`, false},
	{"or nested", `{"body":{"$or":[{"kind":["order"]},{"size":[{"numeric":[">",9]}]}]}}`, `{"body":{"kind":"x","size":10}}`, true},
	{"or nested no", `{"body":{"$or":[{"kind":["order"]},{"size":[{"numeric":[">",9]}]}]}}`, `{"body":{"kind":"x","size":9}}`, false},
	{"or inside or", `{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[3]}]}]}`, `{"c":3}`, true},
	{"or inside or no", `{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[3]}]}]}`, `{"d":3}`, false},
	{"or with exists false", `{"$or":[{"a":[{"exists":false}]},{"a":["x"]}]}`, `{"a":"y"}`, false},
	{"or with exists false absent", `{"$or":[{"a":[{"exists":false}]},{"a":["x"]}]}`, `{}`, true},

	// Keys that only look special.
	{"dotted key is one key", `{"a.b":["x"]}`, `{"a.b":"x"}`, true},
	{"dotted key does not descend", `{"a.b":["x"]}`, `{"a":{"b":"x"}}`, false},
	{"dollar key", `{"$and":["x"]}`, `{"$and":"x"}`, true},

	// Realistic SQS-shaped record.
	{"sqs body", `{"body":{"RetailID":[{"numeric":[">=",100]}],"Region":[{"prefix":"us-"}]},"attributes":{"ApproximateReceiveCount":["1"]}}`,
		`{"messageId":"m1","body":{"RetailID":150,"Region":"us-west-2","Items":[1,2]},"attributes":{"ApproximateReceiveCount":"1"}}`, true},
	{"sqs body miss", `{"body":{"RetailID":[{"numeric":[">=",100]}],"Region":[{"prefix":"us-"}]}}`,
		`{"messageId":"m1","body":{"RetailID":99,"Region":"us-west-2"}}`, false},
}

func TestMatch(t *testing.T) {
	for _, c := range matchCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.pattern)
			if err != nil {
				t.Fatalf("Compile(%s): %v", c.pattern, err)
			}
			if got := p.Match(decode(t, c.rec)); got != c.want {
				t.Errorf("pattern %s, record %s: Match = %v, want %v", c.pattern, c.rec, got, c.want)
			}
			if p.String() != c.pattern {
				t.Errorf("String() = %q, want the source %q", p.String(), c.pattern)
			}
		})
	}
}

// TestMatchNumberTypes: records built in Go rather than decoded may carry
// ints or json.Number.
func TestMatchNumberTypes(t *testing.T) {
	p, err := Compile(`{"a":[{"numeric":[">",1,"<",3]}],"b":[7]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rec  map[string]any
		want bool
	}{
		{map[string]any{"a": 2, "b": int64(7)}, true},
		{map[string]any{"a": json.Number("2.5"), "b": json.Number("7")}, true},
		{map[string]any{"a": json.Number("3"), "b": 7.0}, false},
		{map[string]any{"a": 2, "b": "7"}, false},
		{map[string]any{"a": []string{"2"}, "b": 7}, false}, // not []any: an opaque value
	} {
		if got := p.Match(c.rec); got != c.want {
			t.Errorf("Match(%#v) = %v, want %v", c.rec, got, c.want)
		}
	}
	if !p.Match(map[string]any{"a": 2.0, "b": 7.0}) || p.Match(nil) {
		t.Error("float64 record or nil record matched wrongly")
	}
}

type errCase struct {
	name    string
	pattern string
	msg     string // substring of Error.Msg
	// at locates the offset: where this first occurs in pattern; "" means
	// 0, "$end" the pattern's length and "@N" offset N.
	at string
}

var errCases = []errCase{
	// Not a pattern object.
	{"empty string", ``, "pattern is empty", ""},
	{"only space", `   `, "pattern is empty", "$end"},
	{"array pattern", ` ["a"]`, "pattern must be a JSON object", `[`},
	{"string pattern", `"a"`, "pattern must be a JSON object", ""},
	{"null pattern", `null`, "got a null", ""},
	{"empty object", ` {}`, "pattern is an empty object", `{`},

	// JSON syntax, with the offset of the problem.
	{"trailing garbage", `{"a":["y"]} x`, "unexpected 'x' after the pattern", `x`},
	{"trailing object", `{"a":["x"]}{}`, "after the pattern", `{}`},
	{"unterminated object", `{"a":["x"]`, "expected ',' or '}' in object, found end of input", "$end"},
	{"missing colon", `{"a" ["x"]}`, "expected ':' after object key, found '['", `[`},
	{"unquoted key", `{a:["x"]}`, "expected a quoted object key", `a`},
	{"trailing comma", `{"a":["x",]}`, "unexpected ']'", `]`},
	{"single quotes", `{"a":['x']}`, "unexpected '\\''", `'`},
	{"bad literal", `{"a":[tru]}`, "unexpected 't'", `tru`},
	{"bad number", `{"a":[01]}`, "expected ',' or ']'", `1]`},
	{"bad number minus", `{"a":[-]}`, "malformed number", `-`},
	{"bad number dot", `{"a":[1.]}`, "malformed number", `1.`},
	{"bad number exp", `{"a":[1e]}`, "malformed number", `1e`},
	{"huge number", `{"a":[1e999]}`, "number 1e999 is out of range", `1e999`},
	{"control char", "{\"a\":[\"x\ty\"]}", "control character", "\t"},
	{"bad escape", `{"a":["x\qy"]}`, `invalid escape "\\q"`, `\q`},
	{"bad unicode escape", `{"a":["\u12"]}`, `\u must be followed by four hex digits`, `\u`},
	{"unterminated string", `{"a":["x]}`, "unterminated string", `"x`},
	{"invalid utf8", "{\"a\":[\"\xff\"]}", "not valid UTF-8", "\"\xff"},
	{"json too deep", `{"a":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`, "nested more than 48 levels", "@53"},

	// Structure.
	{"leaf string", `{"body":{"kind":"order"}}`, `"body.kind": value must be an array of matchers`, `"order"`},
	{"leaf number", `{"a":5}`, `"a": value must be an array of matchers such as ["order"] or a nested object; got a number`, `5`},
	{"leaf null", `{"a":null}`, `got a null`, `null`},
	{"empty array", `{"a":{"b":[]}}`, `"a.b": matcher array is empty`, `[]`},
	{"empty nested object", `{"a":{"b":{}}}`, `"a.b": empty object`, `{}}`},
	{"duplicate key", `{"a":["x"],"a":["y"]}`, `"a": key appears twice`, `"a":["y"]`},
	{"duplicate nested key", `{"a":{"b":[1],"b":[2]}}`, `"a.b": key appears twice`, `"b":[2]`},
	{"nested array in matchers", `{"a":[["x"]]}`, `"a": a matcher must be a string, number, boolean, null or matcher object; got an array`, `["x"]]`},

	// Matcher objects.
	{"unknown matcher", `{"a":[{"contains":"x"}]}`, `"a": unknown matcher "contains"`, `"contains"`},
	{"cidr unsupported", `{"ip":[{"cidr":"10.0.0.0/8"}]}`, `"ip": the cidr matcher is not supported`, `"cidr"`},
	{"matcher two keys", `{"a":[{"prefix":"x","suffix":"y"}]}`, `"a": a matcher object has exactly one key`, `{"prefix"`},
	{"matcher no keys", `{"a":[{}]}`, `exactly one key (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric or exists); got none`, `{}`},
	{"prefix number", `{"a":[{"prefix":5}]}`, `"a": prefix needs a string or {"equals-ignore-case": string}; got a number`, `5`},
	{"prefix bad object", `{"a":[{"prefix":{"wildcard":"x"}}]}`, `prefix needs a string`, `{"wildcard"`},
	{"prefix eic number", `{"a":[{"prefix":{"equals-ignore-case":1}}]}`, `prefix needs a string`, `{"equals`},
	{"suffix array", `{"a":[{"suffix":["x"]}]}`, `"a": suffix needs a string or {"equals-ignore-case": string}; got an array`, `["x"]}`},
	{"eic bool", `{"a":[{"equals-ignore-case":true}]}`, `"a": equals-ignore-case needs a string; got a boolean`, `true`},
	{"exists string", `{"a":[{"exists":"true"}]}`, `"a": exists needs true or false; got a string`, `"true"`},
	{"exists null", `{"a":[{"exists":null}]}`, `exists needs true or false; got a null`, `null`},
	{"wildcard number", `{"a":[{"wildcard":1}]}`, `"a": wildcard needs a string; got a number`, `1}`},
	{"wildcard double star", `{"a":[{"wildcard":"a**b"}]}`, `consecutive * are not allowed`, `"a**b"`},
	{"wildcard bad escape", `{"a":[{"wildcard":"a\\b"}]}`, `a backslash must escape * or \`, `"a\\b"`},
	{"wildcard trailing backslash", `{"a":[{"wildcard":"a\\"}]}`, `a backslash must escape`, `"a\\"`},

	// anything-but.
	{"anything-but bool", `{"a":[{"anything-but":true}]}`, `"a": anything-but needs a string, a number, a list`, `true`},
	{"anything-but null", `{"a":[{"anything-but":null}]}`, `got a null`, `null`},
	{"anything-but empty list", `{"a":[{"anything-but":[]}]}`, `"a": anything-but list is empty`, `[]`},
	{"anything-but mixed list", `{"a":[{"anything-but":["x",1]}]}`, `"a": anything-but list mixes strings and numbers`, `1]`},
	{"anything-but null in list", `{"a":[{"anything-but":["x",null]}]}`, `got a null in the list`, `null`},
	{"anything-but unknown inner", `{"a":[{"anything-but":{"numeric":[">",1]}}]}`, `got "numeric"`, `"numeric"`},
	{"anything-but inner two keys", `{"a":[{"anything-but":{"prefix":"x","suffix":"y"}}]}`, `got an object`, `{"prefix"`},
	{"anything-but prefix number", `{"a":[{"anything-but":{"prefix":1}}]}`, `"a": anything-but prefix needs a string; got a number`, `1}`},
	{"anything-but bad wildcard", `{"a":[{"anything-but":{"wildcard":"**"}}]}`, `consecutive *`, `"**"`},

	// numeric.
	{"numeric not array", `{"body":{"size":[{"numeric":5}]}}`, `"body.size": numeric needs an operator followed by a number`, `5}`},
	{"numeric empty", `{"a":[{"numeric":[]}]}`, `numeric needs an operator followed by a number`, `[]`},
	{"numeric operator only", `{"a":[{"numeric":[">"]}]}`, `operator ">" has no number`, `">"`},
	{"numeric number first", `{"a":[{"numeric":[5,">"]}]}`, `got a number where an operator belongs`, `5,`},
	{"numeric string operand", `{"a":[{"numeric":[">","5"]}]}`, `got a string after ">"`, `"5"`},
	{"numeric unknown operator", `{"a":[{"numeric":["!=",5]}]}`, `numeric operator "!=" is not one of =, <, <=, >, >=`, `"!="`},
	{"numeric three comparisons", `{"a":[{"numeric":[">",0,"<",5,"<",4]}]}`, `numeric allows at most two comparisons`, `"<",4`},
	{"numeric odd tail", `{"a":[{"numeric":[">",0,"<"]}]}`, `operator "<" has no number`, `"<"`},
	{"numeric out of order", `{"a":[{"numeric":["<",5,">",0]}]}`, `lower bound (> or >=) first and an upper bound (< or <=) second`, `">"`},
	{"numeric two lower", `{"a":[{"numeric":[">",0,">=",5]}]}`, `lower bound (> or >=) first`, `">="`},
	{"numeric equals combined", `{"a":[{"numeric":["=",1,"<",5]}]}`, `numeric "=" cannot be combined`, `"<"`},
	{"numeric empty range", `{"a":[{"numeric":[">",5,"<",1]}]}`, `numeric range > 5, < 1 matches no number`, `1]`},
	{"numeric empty point", `{"a":[{"numeric":[">",5,"<=",5]}]}`, `matches no number`, `5]`},

	// $or.
	{"or not array", `{"$or":{"a":["x"]}}`, `"$or": $or needs an array of at least two pattern objects; got an object`, `{"a"`},
	{"or one branch", `{"$or":[{"a":["x"]}]}`, `$or needs an array of at least two pattern objects; got 1`, `[{`},
	{"or scalar branch", `{"$or":[{"a":["x"]},"b"]}`, `"$or[1]": $or branch must be a pattern object; got a string`, `"b"`},
	{"or bad inside branch", `{"x":{"$or":[{"a":["x"]},{"b":"y"}]}}`, `"x.$or[1].b": value must be an array`, `"y"`},
	{"or empty branch", `{"$or":[{"a":["x"]},{}]}`, `"$or[1]": empty object`, `{}`},

	// Limits.
	{"too long", `{"a":["` + strings.Repeat("x", MaxPatternBytes) + `"]}`, "pattern is 4106 bytes; at most 4096 are allowed", "@4096"},
}

func TestCompileErrors(t *testing.T) {
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.pattern)
			if err == nil {
				t.Fatalf("Compile(%q) = %v, want an error containing %q", c.pattern, p, c.msg)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a *Error", err, err)
			}
			if !strings.Contains(e.Msg, c.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, c.msg)
			}
			if err.Error() != "filter: "+e.Msg {
				t.Errorf("Error() = %q, want %q", err.Error(), "filter: "+e.Msg)
			}
			want := 0
			switch {
			case c.at == "":
			case c.at == "$end":
				want = len(c.pattern)
			case strings.HasPrefix(c.at, "@"):
				want, _ = strconv.Atoi(c.at[1:])
			default:
				want = strings.Index(c.pattern, c.at)
				if want < 0 {
					t.Fatalf("bad test: %q not in pattern", c.at)
				}
			}
			if e.Offset != want {
				t.Errorf("Offset = %d, want %d (%q…); message %q", e.Offset, want, c.pattern[min(e.Offset, len(c.pattern)):min(e.Offset+12, len(c.pattern))], e.Msg)
			}
			if strings.ToLower(e.Msg[:1]) != e.Msg[:1] {
				t.Errorf("message %q starts with a capital", e.Msg)
			}
		})
	}
}

// TestErrorMessageExample pins the exact text from the brief's example.
func TestErrorMessageExample(t *testing.T) {
	_, err := Compile(`{"body": {"size": [{"numeric": [">"]}]}}`)
	want := `filter: "body.size": numeric needs an operator followed by a number, such as [">", 0, "<=", 5]; operator ">" has no number`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestLimits(t *testing.T) {
	// Size: exactly MaxPatternBytes is fine, one more is not.
	fill := func(n int) string {
		head, tail := `{"a":["`, `"]}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	if p, err := Compile(fill(MaxPatternBytes)); err != nil {
		t.Errorf("pattern of exactly %d bytes: %v", MaxPatternBytes, err)
	} else if !p.Match(map[string]any{"a": strings.Repeat("x", MaxPatternBytes-10)}) {
		t.Error("pattern of exactly the limit does not match its value")
	}
	if _, err := Compile(fill(MaxPatternBytes + 1)); err == nil || !strings.Contains(err.Error(), "at most 4096") {
		t.Errorf("pattern of %d bytes: got %v", MaxPatternBytes+1, err)
	}

	// Depth: MaxDepth objects nest, MaxDepth+1 do not.
	nest := func(depth int) (string, map[string]any) {
		pat := `{"k":["v"]}`
		rec := map[string]any{"k": "v"}
		for i := 1; i < depth; i++ {
			pat = `{"k":` + pat + `}`
			rec = map[string]any{"k": rec}
		}
		return pat, rec
	}
	pat, rec := nest(MaxDepth)
	if p, err := Compile(pat); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	} else if !p.Match(rec) {
		t.Errorf("depth %d pattern does not match its record", MaxDepth)
	}
	pat, _ = nest(MaxDepth + 1)
	_, err := Compile(pat)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "nest more than 10 deep") ||
		!strings.HasPrefix(e.Msg, `"k.k.k.k.k.k.k.k.k.k": `) || e.Offset != strings.LastIndex(pat, `{"k":["v"]}`) {
		t.Errorf("depth %d: got %#v", MaxDepth+1, err)
	}
	// $or branches count as a level.
	if _, err := Compile(`{"$or":[{"a":[1]},` + mustNest(MaxDepth-1) + `]}`); err != nil {
		t.Errorf("depth %d through $or: %v", MaxDepth, err)
	}
	_, err = Compile(`{"$or":[{"a":[1]},` + mustNest(MaxDepth) + `]}`)
	if err == nil || !strings.Contains(err.Error(), `"$or[1].k.k.k.k.k.k.k.k.k": pattern objects nest more than 10 deep`) {
		t.Errorf("depth %d through $or: got %v", MaxDepth+1, err)
	}

	// Matchers: MaxMatchers fit, one more does not; anything-but lists count per value.
	list := func(n int) string {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = fmt.Sprint(i)
		}
		return strings.Join(vals, ",")
	}
	if p, err := Compile(`{"a":[` + list(MaxMatchers) + `]}`); err != nil {
		t.Errorf("%d matchers: %v", MaxMatchers, err)
	} else if !p.Match(map[string]any{"a": float64(MaxMatchers - 1)}) || p.Match(map[string]any{"a": float64(MaxMatchers)}) {
		t.Error("the last of MaxMatchers values does not match, or a value past them does")
	}
	tooMany := `{"a":[` + list(MaxMatchers-1) + `],"b":[1,2]}`
	if _, err := Compile(tooMany); !errors.As(err, &e) || !strings.Contains(e.Msg, `"b": pattern has more than 256 matchers`) || e.Offset != strings.Index(tooMany, "2]}") {
		t.Errorf("%d matchers: got %v", MaxMatchers+1, err)
	}
	ab := `{"a":[1],"b":[{"anything-but":[` + list(MaxMatchers) + `]}]}`
	if _, err := Compile(ab); err == nil || !strings.Contains(err.Error(), "more than 256 matchers") {
		t.Errorf("anything-but list pushing past the cap: got %v", err)
	}
}

// mustNest returns depth nested {"k": …} objects as JSON.
func mustNest(depth int) string {
	pat := `{"k":["v"]}`
	for i := 1; i < depth; i++ {
		pat = `{"k":` + pat + `}`
	}
	return pat
}

func TestCompileSet(t *testing.T) {
	s, err := CompileSet([]string{`{"a":["x"]}`, `{"b":[{"numeric":[">",1]}]}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rec  string
		want bool
	}{
		{`{"a":"x"}`, true},
		{`{"b":2}`, true},
		{`{"a":"y","b":1}`, false},
		{`{}`, false},
	} {
		if got := s.Match(decode(t, c.rec)); got != c.want {
			t.Errorf("Set.Match(%s) = %v, want %v", c.rec, got, c.want)
		}
	}

	for _, empty := range []Set{nil, {}} {
		if !empty.Match(decode(t, `{"anything":1}`)) || !empty.Match(nil) {
			t.Error("an empty Set must match everything")
		}
	}
	if s, err := CompileSet(nil); err != nil || len(s) != 0 || !s.Match(nil) {
		t.Errorf("CompileSet(nil) = %v, %v", s, err)
	}

	five := []string{`{"a":[1]}`, `{"a":[2]}`, `{"a":[3]}`, `{"a":[4]}`, `{"a":[5]}`}
	if s, err := CompileSet(five); err != nil || len(s) != MaxFilters || !s.Match(decode(t, `{"a":5}`)) {
		t.Errorf("five filters: %v, %v", s, err)
	}
	_, err = CompileSet(append(five, `{"a":[6]}`))
	if !errors.Is(err, ErrTooManyFilters) || !strings.Contains(err.Error(), "at most 5 are allowed; got 6") {
		t.Errorf("six filters: got %v", err)
	}

	bad := `{"a":[{"numeric":[">"]}]}`
	_, err = CompileSet([]string{`{"a":["x"]}`, `{"b":[1]}`, bad})
	var se *SetError
	var e *Error
	if !errors.As(err, &se) || se.Index != 2 || !errors.As(err, &e) || e.Offset != strings.Index(bad, `">"`) {
		t.Fatalf("bad third filter: got %#v", err)
	}
	if want := `filter 2: "a": numeric needs an operator followed by a number`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
	}
}

// TestMatchDoesNotModify: matching reads the record only.
func TestMatchDoesNotModify(t *testing.T) {
	p, err := Compile(`{"a":{"b":[{"exists":false}]},"c":[{"anything-but":"x"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	src := `{"a":[{"c":1},"s"],"c":["x","y"]}`
	rec := decode(t, src)
	if !p.Match(rec) {
		t.Error("no match")
	}
	after, _ := json.Marshal(rec)
	if string(after) != src {
		t.Errorf("record changed: %s", after)
	}
}

func ExampleCompile() {
	p, err := Compile(`{"body":{"kind":["order"],"total":[{"numeric":[">",100]}]}}`)
	if err != nil {
		panic(err)
	}
	var big, small map[string]any
	_ = json.Unmarshal([]byte(`{"body":{"kind":"order","total":250}}`), &big)
	_ = json.Unmarshal([]byte(`{"body":{"kind":"order","total":20}}`), &small)
	fmt.Println(p.Match(big), p.Match(small))

	_, err = Compile(`{"body":{"total":100}}`)
	fmt.Println(err)
	// Output:
	// true false
	// filter: "body.total": value must be an array of matchers such as ["order"] or a nested object; got a number
}
