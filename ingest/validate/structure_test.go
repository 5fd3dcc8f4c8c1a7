package validate

import (
	"slices"
	"strings"
	"testing"
)

// TestStructureScenarios walks segment sequences through the Z22 structure: each scenario is the
// base message with segments moved, repeated or removed, and the structure findings it gets.
func TestStructureScenarios(t *testing.T) {
	const (
		orc  = "ORC|RE||ORD002^SITE1"
		rxa  = "RXA|0|1|20230115||08^Hep B, adolescent or pediatric^CVX|999|||01^Historical information - source unspecified^NIP001||||||||||||A"
		obx  = "OBX|1|CE|30956-7^Vaccine type^LN|1|45^Hep B^CVX||||||F"
		nte  = "NTE|||A comment"
		pv1  = "PV1|1|R"
		in1  = "IN1|1|A^B^HL70072|X|Y"
		tq1  = "TQ1|1"
		zzz  = "ZZZ|local"
		none = ""
	)
	for _, tc := range []struct {
		name  string
		edits []string
		want  string // the structure findings: "rule@segment#seq g<group>", comma-separated
	}{
		{"base", nil, none},
		{"second vaccination", []string{"add end " + orc, "add end " + rxa}, none},
		{"second vaccination without ORC", []string{"add end " + rxa}, "orc-segment-missing@RXA#2 g2"},
		{"ORC without RXA", []string{"add end " + orc}, "rxa-segment-missing@ORC#2 g0"},
		{"two ORC in a row", []string{"ins ORC " + orc}, "rxa-segment-missing@ORC#1 g0"},
		{"OBX before any order", []string{"add NK1 " + obx}, "segment-order@OBX#1 g0"},
		{"NTE after OBX", []string{"add OBX#1 " + nte}, none},
		{"two NTE after OBX", []string{"add OBX#1 " + nte, "add OBX#1 " + nte}, "segment-repeat@NTE#2 g1"},
		{"NTE without OBX", []string{"add RXR " + nte}, "segment-order@NTE#1 g1"},
		{"PV1 and IN1 before the order", []string{"add NK1 " + pv1, "add PV1 " + in1, "add IN1 " + in1}, none},
		{"PV1 twice", []string{"add NK1 " + pv1, "add PV1 " + pv1}, "segment-repeat@PV1#2 g0"},
		{"TQ1 between ORC and RXA", []string{"add ORC " + tq1}, none},
		{"TQ1 after RXA", []string{"add RXA " + tq1}, "segment-order@TQ1#1 g1"},
		{"PD1 after NK1", []string{"del PD1", "add NK1 PD1|||||||||||02^Reminder/Recall - any method^HL70215"}, "segment-order@PD1#1 g0"},
		{"PID after the order", []string{"add end PID|1||X^^^SITE1^MR||Roe^Rick^^^^^L||20190101|M"}, "pid-segment-repeat@PID#2 g0"},
		{"Z segment", []string{"add PID " + zzz}, "segment-unknown@ZZZ#1 g0"},
		{"RXR before RXA", []string{"del RXR", "add ORC RXR|C28161^Intramuscular^NCIT"}, "segment-order@RXR#1 g0,rxr-segment-missing@RXA#1 g1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testValidator(t)
			var got []string
			for _, f := range v.Validate(mustParse(t, applyEdits(t, tc.edits)), "") {
				if r := ruleByID(f.Rule); r.Family == FamilyStructure {
					got = append(got, f.Rule+"@"+f.Location.Segment+"#"+itoa(f.Location.Sequence)+" g"+itoa(f.Group))
				}
			}
			var want []string
			if tc.want != "" {
				want = strings.Split(tc.want, ",")
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestStructureRemembered: a sequence of segments found in order is remembered and not walked
// again; one out of order is never remembered, and gives its findings every time, also after
// the in-order sequence was remembered.
func TestStructureRemembered(t *testing.T) {
	v := testValidator(t)
	base := string(readFixture(t, "base.hl7"))
	if fs := v.Validate(mustParse(t, []byte(base)), "SITE1"); len(fs) != 0 {
		t.Fatalf("base fixture: %v", ruleIDs(fs))
	}
	if pub, pend := v.clean.structs.sizes(); pub+pend != 1 {
		t.Fatalf("remembered sequences: %d published, %d pending, want 1", pub, pend)
	}
	// RXR before its RXA: out of order.
	segs := strings.FieldsFunc(base, func(c rune) bool { return c == '\r' || c == '\n' })
	for i := range segs {
		if strings.HasPrefix(segs[i], "RXR|") {
			segs[i-1], segs[i] = segs[i], segs[i-1]
			break
		}
	}
	swapped := strings.Join(segs, "\r") + "\r"
	var first []string
	for k := range 3 {
		got := findingsOf(v.Validate(mustParse(t, []byte(swapped)), "SITE1"), ruleSegmentOrder.ID)
		if len(got) == 0 {
			t.Fatalf("validation %d: no %s finding for RXR before RXA", k+1, ruleSegmentOrder.ID)
		}
		if k == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			t.Fatalf("validation %d: %q, first %q", k+1, got, first)
		}
		v.Validate(mustParse(t, []byte(base)), "SITE1")
	}
	if pub, pend := v.clean.structs.sizes(); pub+pend != 1 {
		t.Fatalf("remembered sequences: %d published, %d pending, want only the in-order one", pub, pend)
	}
}
