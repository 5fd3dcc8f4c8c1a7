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
	buf = append(grow(buf, findingsJSONSize(fs)), '[')
	var loc [64]byte // a location's text: a segment name and five numbers
	for i := range fs {
		f := &fs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"rule":`...)
		buf = appendJSONString(buf, f.Rule)
		if l := &f.Location; l.Segment != "" {
			b := append(loc[:0], l.Segment...)
			b = append(strconv.AppendInt(append(b, '['), int64(l.Sequence), 10), "]-"...)
			b = strconv.AppendInt(b, int64(l.Field), 10)
			b = strconv.AppendInt(append(b, '.'), int64(l.Component), 10)
			b = strconv.AppendInt(append(b, '.'), int64(l.Sub), 10)
			buf = appendJSONString(append(buf, `,"location":`...), b)
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

// findingsJSONSize is about the length of fs's JSON (appendFindingsJSON), so that its buffer is
// allocated once rather than grown a field at a time.
func findingsJSONSize(fs []ack.Finding) int {
	n := 2
	for i := range fs {
		n += 112 + len(fs[i].Rule) + len(fs[i].Text) + len(fs[i].Location.Segment)
	}
	return n
}

// appendJSONString appends s as a JSON string, as encoding/json writes it: printable ASCII that
// JSON and encoding/json's HTML escaping leave alone is copied; anything else (control
// characters, quotes, backslashes, <, >, &, non-ASCII, invalid UTF-8) goes through json.Marshal.
func appendJSONString[S string | []byte](buf []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(string(s)) // a string always marshals
			return append(buf, b...)
		}
	}
	return append(append(append(buf, '"'), s...), '"')
}
