package sources

import "encoding/json"

// AppendJSONString appends s as encoding/json writes a string, for the
// sources' one-pass event writers. Plain ASCII (the usual topic, stream,
// subject and field names) is copied as it is; any other string goes
// through encoding/json for its escaping rules (HTML characters, control
// characters, invalid UTF-8, U+2028 and U+2029).
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
