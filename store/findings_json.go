package store

import (
	"encoding/json"
	"strconv"

	"github.com/vaxgate/vaxgate/ack"
)

// appendFindingsJSON appends the JSON array of fs that messages.findings holds: the bytes
// json.Marshal(findingsJSON(fs)) writes (TestFindingsJSONMatchesMarshal), without its reflection
// or a formatted string per location — every message archived pays it.
func appendFindingsJSON(buf []byte, fs []ack.Finding) []byte {
	buf = append(buf, '[')
	var loc []byte
	for i := range fs {
		f := &fs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"rule":`...)
		buf = appendJSONString(buf, f.Rule)
		if l := &f.Location; l.Segment != "" {
			loc = append(loc[:0], l.Segment...)
			loc = append(strconv.AppendInt(append(loc, '['), int64(l.Sequence), 10), "]-"...)
			loc = strconv.AppendInt(loc, int64(l.Field), 10)
			loc = strconv.AppendInt(append(loc, '.'), int64(l.Component), 10)
			loc = strconv.AppendInt(append(loc, '.'), int64(l.Sub), 10)
			buf = appendJSONString(append(buf, `,"location":`...), string(loc))
		}
		buf = strconv.AppendInt(append(buf, `,"code":`...), int64(f.Code), 10)
		buf = appendJSONString(append(buf, `,"severity":`...), string(f.Severity))
		if f.App != 0 {
			buf = strconv.AppendInt(append(buf, `,"app":`...), int64(f.App), 10)
		}
		buf = appendJSONString(append(buf, `,"text":`...), f.Text)
		if f.Group != 0 {
			buf = strconv.AppendInt(append(buf, `,"group":`...), int64(f.Group), 10)
		}
		buf = append(buf, '}')
	}
	return append(buf, ']')
}

// appendJSONString appends s as a JSON string, as encoding/json writes it: printable ASCII that
// JSON and encoding/json's HTML escaping leave alone is copied; anything else (control
// characters, quotes, backslashes, <, >, &, non-ASCII, invalid UTF-8) goes through json.Marshal.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(buf, b...)
		}
	}
	return append(append(append(buf, '"'), s...), '"')
}
