package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vaxgate/vaxgate/ack"
)

// TestFindingsJSONMatchesMarshal: messages.findings is written with the bytes encoding/json wrote
// before (json.Marshal(findingsJSON(fs))), for edge-case and random findings: no location, no
// application code or group, escapes and HTML characters, non-ASCII and invalid UTF-8, U+2028,
// extreme numbers.
func TestFindingsJSONMatchesMarshal(t *testing.T) {
	texts := []string{"", "plain text", `quote " and \ backslash`, "<b>&amp;</b>", "tab\there\nnew\rline\x00\x1f\x7f",
		"Müller — 日本 😀", "line\u2028sep\u2029", "bad \xff\xfe utf-8", "'single' /slash/"}
	cases := [][]ack.Finding{nil, {}, {{}}}
	for _, s := range texts {
		cases = append(cases, []ack.Finding{{Rule: s, Text: s, Severity: ack.Severity(s),
			Location: ack.Location{Segment: s, Sequence: -1, Field: math.MaxInt32, Component: math.MinInt64, Sub: math.MaxInt64}}})
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		fs := make([]ack.Finding, r.IntN(5))
		for i := range fs {
			seg := ""
			if r.IntN(4) > 0 {
				seg = []string{"PID", "RXA", "OBX", "MSH", "X<"}[r.IntN(5)]
			}
			fs[i] = ack.Finding{Rule: texts[r.IntN(len(texts))], Text: texts[r.IntN(len(texts))],
				Severity: []ack.Severity{ack.Error, ack.Warning, ack.Information}[r.IntN(3)],
				Code:     ack.Code(r.IntN(300) - 10), App: ack.AppCode(r.IntN(3) * r.IntN(10)), Group: r.IntN(3) * r.IntN(40),
				Location: ack.Location{Segment: seg, Sequence: r.IntN(9), Field: r.IntN(30), Rep: r.IntN(3), Component: r.IntN(5), Sub: r.IntN(3)}}
		}
		cases = append(cases, fs)
	}
	for _, fs := range cases {
		want, err := json.Marshal(findingsJSON(fs))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFindingsJSON([]byte("x"), fs); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("%+v:\n%s\nencoding/json:\n%s", fs, got, want)
		}
	}
}

// FuzzFindingsJSON: any rule, text and segment encode as encoding/json encodes them.
func FuzzFindingsJSON(f *testing.F) {
	f.Add("rule", "text <&>", "PID", 5)
	f.Add("", "\xff\u2028\"\\", "", 0)
	f.Fuzz(func(t *testing.T, rule, text, seg string, n int) {
		fs := []ack.Finding{{Rule: rule, Text: text, Severity: ack.Severity(text), Code: ack.Code(n), App: ack.AppCode(n),
			Group: n, Location: ack.Location{Segment: seg, Sequence: n, Field: -n}}}
		want, err := json.Marshal(findingsJSON(fs))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFindingsJSON(nil, fs); !bytes.Equal(got, want) {
			t.Fatalf("%s\nencoding/json:\n%s", got, want)
		}
	})
}

// findingJSON and findingsJSON are the archive's findings as encoding/json wrote them before
// appendFindingsJSON: the oracle of its tests.
type findingJSON struct {
	Rule     string `json:"rule"`
	Location string `json:"location,omitempty"`
	Code     int    `json:"code"`
	Severity string `json:"severity"`
	App      int    `json:"app,omitempty"`
	Text     string `json:"text"`
	Group    int    `json:"group,omitempty"`
}

func findingsJSON(fs []ack.Finding) []findingJSON {
	out := make([]findingJSON, 0, len(fs))
	for _, f := range fs {
		loc := ""
		if f.Location.Segment != "" {
			loc = fmt.Sprintf("%s[%d]-%d.%d.%d", f.Location.Segment, f.Location.Sequence, f.Location.Field, f.Location.Component, f.Location.Sub)
		}
		out = append(out, findingJSON{Rule: f.Rule, Location: loc, Code: int(f.Code), Severity: string(f.Severity),
			App: int(f.App), Text: f.Text, Group: f.Group})
	}
	return out
}

// BenchmarkArchiveFindings: a typical accepted message's findings as intake archives them (the
// information PD1-12 draws and two warnings, each with its location), per message.
//
//	go test -run XXX -bench ArchiveFindings -benchmem ./store
func BenchmarkArchiveFindings(b *testing.B) {
	fs := []ack.Finding{
		{Rule: "pd1-12-recorded", Location: ack.Location{Segment: "PD1", Sequence: 1, Field: 12}, Code: ack.CodeAccepted,
			Severity: ack.Information, App: ack.AppDataWasIgnored, Text: "PD1-12 was recorded; data sharing is managed in the registry."},
		{Rule: "rxa-lot-expired", Location: ack.Location{Segment: "RXA", Sequence: 1, Field: 16, Component: 1}, Code: 102,
			Severity: ack.Warning, App: 1, Text: "RXA-16 lot expiration date is before the administration date.", Group: 1},
		{Rule: "msh-21-missing", Location: ack.Location{Segment: "MSH", Sequence: 1, Field: 21}, Code: 101,
			Severity: ack.Warning, App: 4, Text: "MSH-21 should name the Z22 profile."},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := archiveFindings(fs); err != nil {
			b.Fatal(err)
		}
	}
}
