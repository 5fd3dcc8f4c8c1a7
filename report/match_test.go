package report

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// checklist returns the messages of testdata/certification/checklist.hl7 by control ID.
func checklist(t testing.TB) (ids []string, msgs map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile("testdata/certification/checklist.hl7")
	if err != nil {
		t.Fatal(err)
	}
	msgs = map[string][]byte{}
	for _, m := range hl7.SplitMessages(data) {
		pm, err := hl7.Parse(m)
		if err != nil {
			t.Fatal(err)
		}
		id := pm.Get("MSH-10")
		ids = append(ids, id)
		msgs[id] = m
	}
	return ids, msgs
}

// TestDefaultPlanMatchesChecklist: each message of the checklist testdata is an attempt at the
// cases it was written for (and at no case it was not).
func TestDefaultPlanMatchesChecklist(t *testing.T) {
	p := DefaultPlan()
	ids, msgs := checklist(t)
	want := map[string][]string{
		"CERT-01-CHILD":      {"child-administered"},
		"CERT-02-ADULT":      {"adult-administered"},
		"CERT-03-HISTORICAL": {"historical"},
		"CERT-04-REFUSAL":    {"refusal"},
		"CERT-05-IMMUNITY":   {"evidence-of-immunity"},
		"CERT-06-MULTI":      {"child-administered", "several-vaccines"},
		"CERT-07-NEXTOFKIN":  {"child-administered", "next-of-kin"},
		"CERT-08-UPDATE":     {"update"},
		"CERT-09-DELETE":     {"deletion"},
	}
	if len(ids) != len(want) {
		t.Fatalf("checklist has %d messages, want %d", len(ids), len(want))
	}
	covered := map[string]bool{}
	for _, id := range ids {
		m, err := hl7.Parse(msgs[id])
		if err != nil {
			t.Fatal(err)
		}
		var f Facts
		Extract(m, time.Now(), &f)
		var got []string
		for _, i := range p.Match(nil, m, &f) {
			got = append(got, p.Cases[i].ID)
			covered[p.Cases[i].ID] = true
		}
		if !slices.Equal(got, want[id]) {
			t.Errorf("%s matches %v, want %v", id, got, want[id])
		}
	}
	for _, c := range p.Cases {
		if !covered[c.ID] {
			t.Errorf("no checklist message is an attempt at %s", c.ID)
		}
	}
}

func TestExtract(t *testing.T) {
	_, msgs := checklist(t)
	recv := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC) // 4 days after 20250310
	for _, tc := range []struct {
		id   string
		want Facts
	}{
		{"CERT-01-CHILD", Facts{Orders: 1, Administered: 1, WithLot: 1, WithMVX: 1, WithFunding: 1, WithVIS: 1,
			Race: true, Ethnicity: true, Address: true, Lag7: 1, LagDays: 4, AgeYears: float64(795) / 365.25, HasAge: true}},
		{"CERT-02-ADULT", Facts{Orders: 1, Administered: 1, WithFunding: 1, WithVIS: 1, Race: true, Ethnicity: true,
			Address: true, Lag7: 1, LagDays: 3, AgeYears: float64(16462) / 365.25, HasAge: true}},
		{"CERT-03-HISTORICAL", Facts{Orders: 1, Historical: 1, Race: true, Ethnicity: true, Address: true,
			AgeYears: 1.0, HasAge: true}},
		{"CERT-04-REFUSAL", Facts{Orders: 1, Refusals: 1, Race: true, Ethnicity: true, Address: true,
			AgeYears: float64(1362) / 365.25, HasAge: true}},
		{"CERT-05-IMMUNITY", Facts{Orders: 1, Immunity: 1, Race: true, Ethnicity: true, Address: true,
			AgeYears: float64(3634) / 365.25, HasAge: true}},
		{"CERT-06-MULTI", Facts{Orders: 2, Administered: 2, WithLot: 2, WithMVX: 2, WithFunding: 2, WithVIS: 2,
			Race: true, Ethnicity: true, Address: true, Lag1: 0, Lag7: 0, Lag30: 0, LagLate: 0,
			AgeYears: float64(410) / 365.25, HasAge: true}},
		{"CERT-07-NEXTOFKIN", Facts{Orders: 1, Administered: 1, NextOfKin: 1, WithLot: 1, WithMVX: 1, WithFunding: 1,
			WithVIS: 1, Race: true, Ethnicity: true, Address: true, AgeYears: float64(194) / 365.25, HasAge: true}},
	} {
		m, err := hl7.Parse(msgs[tc.id])
		if err != nil {
			t.Fatal(err)
		}
		var got Facts
		Extract(m, recv, &got)
		w := tc.want
		if tc.id == "CERT-03-HISTORICAL" {
			w.AgeYears = got.AgeYears // 2017-08-15 to 2018-08-15
			if got.AgeYears < 0.99 || got.AgeYears > 1.01 {
				t.Errorf("%s: age %v, want about 1", tc.id, got.AgeYears)
			}
		}
		if strings.HasPrefix(tc.id, "CERT-06") || strings.HasPrefix(tc.id, "CERT-07") {
			// administered after recv: clamped to 0 days (received the same day or "before" it)
			w.Lag1, w.LagDays = got.Lag1, got.LagDays
			if got.Lag1 != got.Administered {
				t.Errorf("%s: a dose dated after receipt counts as within 1 day: %+v", tc.id, got)
			}
		}
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.id, got, w)
		}
	}
}

func TestExtractTimelinessBuckets(t *testing.T) {
	_, msgs := checklist(t)
	m, err := hl7.Parse(msgs["CERT-01-CHILD"]) // administered 2025-03-10
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		recv                    string
		lag1, lag7, lag30, late int
		days                    int
	}{
		{"2025-03-10T23:00:00Z", 1, 0, 0, 0, 0},
		{"2025-03-11T01:00:00Z", 1, 0, 0, 0, 1},
		{"2025-03-17T00:00:00Z", 0, 1, 0, 0, 7},
		{"2025-04-09T00:00:00Z", 0, 0, 1, 0, 30},
		{"2025-04-10T00:00:00Z", 0, 0, 0, 1, 31},
	} {
		recv, _ := time.Parse(time.RFC3339, tc.recv)
		var f Facts
		Extract(m, recv, &f)
		if f.Lag1 != tc.lag1 || f.Lag7 != tc.lag7 || f.Lag30 != tc.lag30 || f.LagLate != tc.late || f.LagDays != tc.days {
			t.Errorf("received %s: buckets %d/%d/%d/%d days %d", tc.recv, f.Lag1, f.Lag7, f.Lag30, f.LagLate, f.LagDays)
		}
	}
}

func TestConditionSemantics(t *testing.T) {
	m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20250101||VXU^V04^VXU_V04|X|T|2.5.1\rPID|1||1^^^A^MR~2^^^B^SS||Doe^J\rRXA|0|1|20250101||08^HepB^CVX|||||||||||||||CP|A\rRXA|0|1|20250101||03^MMR^CVX|||||||||||||||CP|U\r"))
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		c    Condition
		want bool
	}{
		{Condition{Field: "RXA-21", Equals: s("U")}, true},   // second occurrence
		{Condition{Field: "PID-3-5", Equals: s("SS")}, true}, // second repetition
		{Condition{Field: "PID-3-5", In: []string{"XX", "MR"}}, true},
		{Condition{Field: "RXA-5", Matches: "0[38]"}, true},
		{Condition{Field: "RXA-5", Matches: "0"}, false}, // anchored
		{Condition{Field: "NK1-2", Present: &no}, true},  // absent segment
		{Condition{Field: "NK1-2", Present: &yes}, false},
		{Condition{Field: "NK1-2", Equals: s("")}, true},
		{Condition{Field: "RXA-15", Present: &yes}, false},
		{Condition{Field: "PID-5-2", Equals: s("J")}, true},
	} {
		c := tc.c
		p, err := parseFieldPath(c.Field)
		if err != nil {
			t.Fatal(err)
		}
		c.path = p
		if c.Matches != "" {
			pc, err := parseCondition(conditionYAML{Field: c.Field, Matches: c.Matches}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.re = pc.re
		}
		var f Facts
		Extract(m, time.Time{}, &f)
		if got := c.holds(m, &f); got != tc.want {
			t.Errorf("%+v holds = %v, want %v", tc.c, got, tc.want)
		}
	}
}

func BenchmarkMatchDefaultPlan(b *testing.B) {
	p := DefaultPlan()
	ids, msgs := checklist(b)
	var m hl7.Message
	var f Facts
	var dst []int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw := msgs[ids[i%len(ids)]]
		if err := m.Parse(raw); err != nil {
			b.Fatal(err)
		}
		Extract(&m, time.Time{}, &f)
		dst = p.Match(dst[:0], &m, &f)
	}
}

// FuzzExtractMatch: any message the parser accepts is summarized and matched without panicking,
// and its facts are consistent.
func FuzzExtractMatch(f *testing.F) {
	_, msgs := checklist(f)
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20250101||VXU^V04|1|T|2.5.1\rPID|1||1^^^A^MR||X||2025\rRXA|0|1|2024||998|||||||||||||||NA|D\rOBX|1|CE|59784-9||x\r"))
	p := DefaultPlan()
	recv := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7.Parse(data)
		if err != nil {
			return
		}
		var facts Facts
		Extract(m, recv, &facts)
		if facts.WithLot > facts.Administered || facts.WithMVX > facts.Administered || facts.WithFunding > facts.Administered ||
			facts.WithVIS > facts.Administered || facts.Lag1+facts.Lag7+facts.Lag30+facts.LagLate > facts.Administered ||
			facts.Administered+facts.Historical+facts.Refusals > facts.Orders || facts.LagDays < 0 ||
			(facts.HasAge && facts.AgeYears < 0) {
			t.Fatalf("inconsistent facts %+v", facts)
		}
		for _, i := range p.Match(nil, m, &facts) {
			if i < 0 || i >= len(p.Cases) {
				t.Fatalf("match %d of %d cases", i, len(p.Cases))
			}
		}
	})
}
