package report

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultPlanLoads(t *testing.T) {
	p := DefaultPlan()
	want := []string{"child-administered", "adult-administered", "historical", "refusal", "evidence-of-immunity",
		"update", "deletion", "several-vaccines", "next-of-kin"}
	if len(p.Cases) != len(want) {
		t.Fatalf("default plan has %d cases, want %d", len(p.Cases), len(want))
	}
	for i, id := range want {
		if p.Cases[i].ID != id {
			t.Errorf("case %d is %q, want %q", i, p.Cases[i].ID, id)
		}
		if len(p.Cases[i].ExpectACK) == 0 || len(p.Cases[i].When) == 0 {
			t.Errorf("case %s has no expected ACK or no conditions", id)
		}
	}
	if len(p.Readiness) == 0 {
		t.Error("default plan has no readiness items")
	}
}

const goodPlan = `name: test plan
cases:
  - id: a
    title: A
    expect_ack: [AA, AE]
    when:
      - field: RXA-9-1
        equals: "00"
      - fact: administered_count
        min: 1
readiness:
  - id: r1
    title: R1
`

func TestParsePlanGood(t *testing.T) {
	p, err := ParsePlan([]byte(goodPlan))
	if err != nil {
		t.Fatal(err)
	}
	c := p.Cases[0]
	if c.ID != "a" || len(c.ExpectACK) != 2 || c.ExpectACK[1] != "AE" || len(c.When) != 2 {
		t.Fatalf("parsed %+v", c)
	}
	if c.When[0].path != (fieldPath{seg: "RXA", field: 9, comp: 1, sub: 1}) {
		t.Errorf("path %+v", c.When[0].path)
	}
	// expect_ack may be a single code, in any case.
	p, err = ParsePlan([]byte(strings.Replace(goodPlan, "[AA, AE]", "ae", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Cases[0].ExpectACK; len(got) != 1 || got[0] != "AE" {
		t.Errorf("expect_ack %v", got)
	}
}

// TestParsePlanRefused: a plan that does not parse, or names unknown fields, is refused with the
// line and the reason.
func TestParsePlanRefused(t *testing.T) {
	for _, tc := range []struct {
		name, plan string
		line       int
		reason     string
	}{
		{"not YAML", "name: x\ncases:\n  - id: a\n    title: b: c\n", 4, "mapping values are not allowed"},
		{"tab", "name: x\ncases:\n  - id: a\n\ttitle: b\n", 3, "tab"},
		{"empty", "", 0, "empty"},
		{"no name", "cases: []\n", 1, "no name"},
		{"no cases", "name: x\ncases: []\n", 2, "no cases"},
		{"unknown top-level key", "name: x\nowner: me\ncases: []\n", 2, "owner"},
		{"unknown case key", strings.Replace(goodPlan, "    title: A\n", "    title: A\n    severity: high\n", 1), 5, "severity"},
		{"unknown condition key", strings.Replace(goodPlan, "        equals: \"00\"\n", "        equals: \"00\"\n        within: 3\n", 1), 9, "within"},
		{"unknown segment", strings.Replace(goodPlan, "RXA-9-1", "ZZZ-9", 1), 7, "no segment ZZZ"},
		{"field past the segment", strings.Replace(goodPlan, "RXA-9-1", "RXA-40", 1), 7, "RXA has 28 fields"},
		{"bad field path", strings.Replace(goodPlan, "RXA-9-1", "RXA", 1), 7, "not SEG-FIELD"},
		{"zero position", strings.Replace(goodPlan, "RXA-9-1", "RXA-0", 1), 7, "position"},
		{"unknown fact", strings.Replace(goodPlan, "administered_count", "doses_count", 1), 9, `unknown fact "doses_count"`},
		{"two tests", strings.Replace(goodPlan, "        equals: \"00\"\n", "        equals: \"00\"\n        present: true\n", 1), 7, "exactly one test"},
		{"no test", strings.Replace(goodPlan, "        equals: \"00\"\n", "", 1), 7, "exactly one test"},
		{"field and fact", strings.Replace(goodPlan, "      - field: RXA-9-1\n", "      - field: RXA-9-1\n        fact: nk1_count\n", 1), 7, "not both"},
		{"neither field nor fact", strings.Replace(goodPlan, "      - field: RXA-9-1\n", "      - matches: x\n", 1), 7, "needs a field"},
		{"min on a field", strings.Replace(goodPlan, "        equals: \"00\"\n", "        min: 1\n", 1), 7, "min/max apply to facts"},
		{"text test on a fact", strings.Replace(goodPlan, "        min: 1\n", "        matches: \"1\"\n", 1), 9, "is a number"},
		{"bad regex", strings.Replace(goodPlan, "        equals: \"00\"\n", "        matches: \"(\"\n", 1), 8, "matches"},
		{"bad ACK code", strings.Replace(goodPlan, "[AA, AE]", "[AA, OK]", 1), 5, `"OK" is not an ACK code`},
		{"no ACK", strings.Replace(goodPlan, "    expect_ack: [AA, AE]\n", "", 1), 3, "expect_ack is missing"},
		{"no conditions", strings.Replace(goodPlan, "    when:\n      - field: RXA-9-1\n        equals: \"00\"\n      - fact: administered_count\n        min: 1\n", "", 1), 3, "no conditions"},
		{"duplicate case", goodPlan[:strings.Index(goodPlan, "readiness:")] + "  - id: a\n    title: B\n    expect_ack: AA\n    when:\n      - fact: nk1_count\n        min: 1\n", 11, `"a" is already used on line 3`},
		{"readiness id reuses a case id", strings.Replace(goodPlan, "id: r1", "id: a", 1), 12, "already used"},
		{"bad case id", strings.Replace(goodPlan, "id: a", "id: Case A", 1), 3, "must be"},
		{"wrong type", strings.Replace(goodPlan, "        min: 1\n", "        min: [1]\n", 1), 10, "cannot unmarshal"},
		{"in empty", strings.Replace(goodPlan, "        equals: \"00\"\n", "        in: []\n", 1), 8, "empty"},
		{"min above max", strings.Replace(goodPlan, "        min: 1\n", "        min: 3\n        max: 1\n", 1), 9, "greater than max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(tc.plan))
			var pe *PlanError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PlanError", err)
			}
			if pe.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", pe.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if tc.line > 0 && !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

func TestLoadPlanTooLarge(t *testing.T) {
	_, err := LoadPlan(strings.NewReader("name: x\n" + strings.Repeat("#", maxPlanSize)))
	var pe *PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(goodPlan))
	f.Add(DefaultPlanYAML())
	f.Add([]byte("name: x\ncases:\n  - id: a\n    title: A\n    expect_ack: AA\n    when:\n      - field: PID-3(2)-4\n        present: true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data)
		if err != nil {
			var pe *PlanError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *PlanError: %v", err)
			}
			return
		}
		// A plan that loads is usable: every condition has its test and a valid target.
		for _, c := range p.Cases {
			if len(c.When) == 0 || len(c.ExpectACK) == 0 {
				t.Fatalf("case %q loaded without conditions or ACK", c.ID)
			}
			for _, w := range c.When {
				if w.Fact == "" && w.path.seg == "" {
					t.Fatalf("condition without a target: %+v", w)
				}
			}
		}
	})
}
