package validate

import (
	"testing"

	"github.com/vaxgate/vaxgate/ack"
)

func TestZipStates(t *testing.T) {
	for _, c := range []struct{ zip, want string }{
		{"02118", "MA"}, {"01101", "MA"}, {"02903", "RI"}, {"10001", "NY"}, {"00501", "NY"},
		{"00901", "PR"}, {"20500", "DC"}, {"73301", "TX"}, {"73101", "OK"}, {"88501", "TX"},
		{"96799", "HI AS"}, {"96910", "GU MP PW FM MH"}, {"99501", "AK"}, {"90210", "CA"},
		{"09001", "AE"}, {"34001", "AA"}, {"96201", "AP"}, {"59001", "MT"}, {"83814", "ID"},
		{"00100", ""}, {"71501", ""}, {"AB123", ""},
	} {
		if got := zipStates([]byte(c.zip)); got != c.want {
			t.Errorf("zipStates(%s) = %q, want %q", c.zip, got, c.want)
		}
	}
	// The ranges are sorted and do not overlap: the binary search depends on it.
	for i := 1; i < len(zipRanges); i++ {
		if zipRanges[i].lo <= zipRanges[i-1].hi || zipRanges[i].lo > zipRanges[i].hi {
			t.Errorf("zipRanges[%d] %v after %v", i, zipRanges[i], zipRanges[i-1])
		}
	}
	if !hasState("GU MP PW", []byte("MP")) || hasState("GU MP", []byte("M")) || hasState("MA", []byte("RI")) {
		t.Error("hasState")
	}
	for fips, st := range fipsStates {
		if !usStates.has([]byte(st)) {
			t.Errorf("FIPS %s: %s is not a USPS state code", fips, st)
		}
	}
}

// TestFixedRulesRefuseOverrides: limits and values the registry cannot store stay errors.
func TestFixedRulesRefuseOverrides(t *testing.T) {
	for _, id := range []string{"segments-limit", "findings-limit", "field-repetitions-limit", "control-character", "charset-undecodable", "length-storage-limit", "rxa-5-unknown", "rxa-5-ndc-unknown"} {
		if _, err := New(Options{Severity: map[string]ack.Severity{id: ack.Warning}}); err == nil {
			t.Errorf("%s: a W override was accepted", id)
		}
		if _, err := New(Options{SenderSeverity: map[string]map[string]ack.Severity{"S": {id: Ignore}}}); err == nil {
			t.Errorf("%s: an X override for a sender was accepted", id)
		}
	}
	if _, err := New(Options{Severity: map[string]ack.Severity{"charset-undeclared": ack.Information}}); err != nil {
		t.Errorf("charset-undeclared is a warning a deployment may lower: %v", err)
	}
}
