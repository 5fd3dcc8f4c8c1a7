package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/vaxgate/vaxgate/ack"
)

func TestFindingsRoundTrip(t *testing.T) {
	fs := []ack.Finding{
		{Rule: "obx-3-required", Location: ack.Location{Segment: "OBX", Sequence: 120000, Field: 3, Rep: 1, Component: 2, Sub: 1},
			Code: ack.CodeRequiredFieldMissing, Severity: ack.Error, App: ack.AppRequiredDataMissing, Group: 3, Text: "OBX-3 is empty"},
		{Rule: "odd\trule^x", Location: ack.Location{Segment: "P^\\D", Sequence: 1}, Code: ack.CodeDataType, Severity: ack.Warning,
			Text: "tab\there, line\nbreak, cr\r, backslash \\ and caret ^ and \\t literal"},
		{Code: ack.CodeAccepted, Severity: ack.Information},
	}
	b, err := encodeFindings(slices.Values(fs))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeFindings(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, fs)
	}
	if got, err := DecodeFindings(nil); got != nil || err != nil {
		t.Errorf("nil: %v %v", got, err)
	}
}

// TestArchiveFindingsCompact: a junk message's 120,000 findings are all kept, in a small
// fraction of what one JSON object per finding took.
func TestArchiveFindingsCompact(t *testing.T) {
	var fs []ack.Finding
	for i := 1; i <= 120_000; i++ {
		fs = append(fs, ack.Finding{Rule: "obx-2-value-type", Location: ack.Location{Segment: "OBX", Sequence: i, Field: 2, Rep: 1},
			Code: ack.CodeTableValueNotFound, Severity: ack.Error, App: ack.AppTableValueNotFound,
			Text: fmt.Sprintf("OBX-2 (value type) %q is not a value type of HL7 table 0125.", "XX")})
	}
	a, err := archiveFindings(fs)
	if err != nil {
		t.Fatal(err)
	}
	var listed []findingJSON
	if err := json.Unmarshal(a.listed, &listed); err != nil || len(listed) != ack.DefaultMaxERR {
		t.Fatalf("listed: %d (%v), want %d", len(listed), err, ack.DefaultMaxERR)
	}
	rest, err := DecodeFindings(a.more)
	if err != nil || len(rest) != len(fs)-ack.DefaultMaxERR || a.moreCount != len(rest) {
		t.Fatalf("more: %d (%v), count %d", len(rest), err, a.moreCount)
	}
	if rest[len(rest)-1] != fs[len(fs)-1] {
		t.Errorf("last finding %+v, want %+v", rest[len(rest)-1], fs[len(fs)-1])
	}
	old, _ := json.Marshal(findingsJSON(fs))
	t.Logf("120,000 findings: %d bytes archived (json %d + compact %d); one JSON object each: %d bytes",
		len(a.listed)+len(a.more), len(a.listed), len(a.more), len(old))
	if len(a.listed)+len(a.more) > len(old)/20 {
		t.Errorf("archive %d bytes, not compact next to %d", len(a.listed)+len(a.more), len(old))
	}
	if small, _ := archiveFindings(fs[:3]); small.more != nil || small.moreCount != 0 {
		t.Error("a message the ACK lists whole has no more_findings")
	}
}

// FuzzDecodeFindings: DecodeFindings never panics, and what it decodes encodes back to the same.
func FuzzDecodeFindings(f *testing.F) {
	seed, _ := encodeFindings(slices.Values([]ack.Finding{{Rule: "r", Location: ack.Location{Segment: "PID", Sequence: 1, Field: 3},
		Code: 101, Severity: ack.Error, Text: "t\\n"}}))
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := DecodeFindings(b)
		if err != nil {
			return
		}
		again, err := encodeFindings(slices.Values(fs))
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeFindings(again)
		if err != nil || !reflect.DeepEqual(back, fs) {
			t.Fatalf("re-encoded findings differ: %v", err)
		}
	})
}
