package validate

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// TestCleanFieldsKeepFindings: a Validator that has seen traffic before (and remembers its clean
// field values) finds exactly what a new one finds, message by message: the corpus, the rule
// fixtures' messages with their problems, and generated traffic, each validated after all the
// others.
func TestCleanFieldsKeepFindings(t *testing.T) {
	msgs := corpusMessages(t)
	g := vxugen.New(vxugen.Options{Seed: 5, ControlIDs: "CLEAN", Now: testNow})
	for range 200 {
		msgs = append(msgs, g.Next())
	}
	// Variants that differ from clean values in one byte (a code, a length, a date), so that a
	// remembered value could wrongly stand for them.
	base := readFixture(t, "base.hl7")
	for _, r := range [][2]string{
		{"FTH^Father^HL70063", "FTX^Father^HL70063"}, {"2106-3^White^CDCREC", "2106-3^White^CDCRE"},
		{"12 Main St^^Boston^MA^02118^USA^P", "12 Main St^^Boston^MA^02118^USA^Q"}, {"^PRN^PH^^^617^5551212", "^PRN^XX^^^617^5551212"},
	} {
		msgs = append(msgs, bytes.ReplaceAll(base, []byte(r[0]), []byte(r[1])))
	}
	warm := testValidator(t)
	for _, m := range msgs {
		warm.Validate(mustParse(t, m), "SITE1")
	}
	if n, _ := warm.clean.sizes(); n == 0 {
		t.Fatal("no field value was remembered as clean")
	}
	for i, m := range msgs {
		cold := testValidator(t).Validate(mustParse(t, m), "SITE1")
		if got := warm.Validate(mustParse(t, m), "SITE1"); !reflect.DeepEqual(got, cold) {
			t.Fatalf("message %d: a validator that has seen traffic finds\n%v\na new one\n%v", i, got, cold)
		}
	}
}

// TestCleanFieldsRespectSeverity: a value with a problem that one sender's severities turn off is
// not remembered as clean: another sender still gets the finding.
func TestCleanFieldsRespectSeverity(t *testing.T) {
	msg := bytes.ReplaceAll(readFixture(t, "base.hl7"), []byte("FTH^Father^HL70063"), []byte("FTX^Father^HL70063"))
	var rule string
	for _, f := range testValidator(t).Validate(mustParse(t, msg), "SITE1") {
		if f.Location.Segment == "NK1" && f.Location.Field == 3 {
			rule = f.Rule
		}
	}
	if rule == "" {
		t.Fatal("the unknown relationship code is not found")
	}
	v, err := New(Options{Now: func() time.Time { return testNow },
		SenderSeverity: map[string]map[string]ack.Severity{"QUIET": {rule: Ignore}}})
	if err != nil {
		t.Fatal(err)
	}
	has := func(site string) bool {
		for _, f := range v.Validate(mustParse(t, msg), site) {
			if f.Rule == rule {
				return true
			}
		}
		return false
	}
	if has("QUIET") {
		t.Fatalf("%s reported to a sender that turned it off", rule)
	}
	if !has("SITE1") {
		t.Fatalf("%s not reported to SITE1 after QUIET sent the same value", rule)
	}
}

// TestCleanFieldsBounded: whatever is sent, the set of remembered values stays bounded, and the
// values published are found.
func TestCleanFieldsBounded(t *testing.T) {
	var c cleanFields
	var buf [maxClean + cleanHead]byte
	key := func(i int) []byte {
		return cleanKey(&buf, segPID, 5, 0, hl7.DefaultDelimiters, []byte(time.Duration(i).String()+"^Doe^Jane"))
	}
	for i := range 3 * maxCleanFields {
		c.add(key(i))
		if pub, pending := c.sizes(); pub > maxCleanFields || pending > maxCleanFields/8 {
			t.Fatalf("%d values published, %d pending", pub, pending)
		}
		if i < publishSmall && !c.has(key(i)) {
			t.Fatalf("value %d not found once added to a small set", i)
		}
	}
	if c.has(key(-1)) {
		t.Fatal("a value never added is found")
	}
}
