package codes_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// A small valid snapshot with one record of every type.
const smallSnapshot = "vaxgate-codes\t1\n" +
	"source\tcvx\tpipe\tcvx.txt\t20240612\t2\n" +
	"cvx\t08\tActive\t0\t20180510\tHep B, adolescent or pediatric\thepatitis B vaccine, pediatric\n" +
	"cvx\t43\tActive\t\t\tHep B, adult\thepatitis B vaccine, adult dosage\n" +
	"mvx\tMSD\tActive\t20121018\tMerck and Co., Inc.\n" +
	"product\t08\tMSD\tActive\tActive\t20130809\tRECOMBIVAX-PEDS\n" +
	"group\tHepB\t45\n" +
	"member\t08\tHepB\n" +
	"ndc\t58160-0821-05\tuse\t43\tSKB\t20070328\t\t20250218\tENGERIX-B\tGlaxoSmithKline Biologicals SA\n" +
	"vis\t253088698300006611230512\t0886983000066\tCurrent\t20230512\t20230512\tHepatitis B VIS\n" +
	"cvxvis\t08\t253088698300006611230512\n" +
	"visurl\t0886983000066\thttps://example.org/hep-b.pdf\thttps://example.org/hep-b.html\tHepatitis B Vaccine VIS\n" +
	"cpt\t90744\t08\t20240613\tHepatitis B vaccine, pediatric/adolescent dosage\n" +
	"end\t12\n"

func TestMarshalRoundTrip(t *testing.T) {
	fixture, _ := importFixture(t)
	small, err := codes.Unmarshal([]byte(smallSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string]*codes.Set{"default": codes.Default(), "fixture": fixture, "small": small} {
		data, err := set.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := codes.Unmarshal(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(data, again) {
			t.Errorf("%s: marshal → unmarshal → marshal differs", name)
		}
		if !reflect.DeepEqual(set.Stats(), back.Stats()) {
			t.Errorf("%s: stats differ: %+v vs %+v", name, set.Stats(), back.Stats())
		}
		if !reflect.DeepEqual(set.Vaccines(), back.Vaccines()) || !reflect.DeepEqual(set.Manufacturers(), back.Manufacturers()) {
			t.Errorf("%s: tables differ after the round trip", name)
		}
	}

	// The embedded snapshot is in canonical form.
	data, _ := codes.Default().MarshalBinary()
	if !bytes.Equal(data, mustSnapshot(t)) {
		t.Error("MarshalBinary of the default set differs from snapshot.dat")
	}
	// And so is the small one.
	if data, _ := small.MarshalBinary(); string(data) != smallSnapshot {
		t.Errorf("small snapshot re-marshalled:\n%s", data)
	}
	v, _ := small.Vaccine("43")
	if v.NonVaccine || !v.Updated.IsZero() {
		t.Errorf("43 = %+v", v)
	}
}

// A checkout that turned LF into CRLF still reads.
func TestUnmarshalCRLF(t *testing.T) {
	set, err := codes.Unmarshal([]byte(strings.ReplaceAll(smallSnapshot, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := set.MarshalBinary(); string(data) != smallSnapshot {
		t.Errorf("CRLF snapshot re-marshalled:\n%s", data)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	lines := strings.SplitAfter(smallSnapshot, "\n")
	lines = lines[:len(lines)-1]              // the empty string after the last \n
	with := func(i int, line string) string { // replace line i (1-based)
		l := append([]string(nil), lines...)
		l[i-1] = line
		return strings.Join(l, "")
	}
	for _, c := range []struct {
		name string
		data string
		line int
		says string
	}{
		{"empty", "", 0, "empty"},
		{"no final line break", strings.TrimSuffix(smallSnapshot, "\n"), 14, "truncated"},
		{"not a snapshot", with(1, "CVX Code|Status\n"), 1, "not a vaxgate code snapshot"},
		{"newer version", with(1, "vaxgate-codes\t2\n"), 1, `format version "2", this build reads version 1`},
		{"unknown record", with(3, "vaccine\t08\n"), 3, `unknown record type "vaccine"`},
		{"field count", with(3, "cvx\t08\tActive\t0\t20180510\tHep B\n"), 3, "cvx record with 6 fields, want 7"},
		{"non-canonical CVX", with(3, "cvx\t8\tActive\t0\t20180510\ta\tb\n"), 3, `CVX "8" is not a canonical CVX code`},
		{"empty status", with(3, "cvx\t08\t\t0\t20180510\ta\tb\n"), 3, "bad status"},
		{"non-vaccine flag", with(3, "cvx\t08\tActive\tyes\t20180510\ta\tb\n"), 3, "non-vaccine flag"},
		{"bad date", with(3, "cvx\t08\tActive\t0\t2018-05-10\ta\tb\n"), 3, `date "2018-05-10" is not YYYYMMDD`},
		{"impossible date", with(3, "cvx\t08\tActive\t0\t20181310\ta\tb\n"), 3, "bad date"},
		{"duplicate", with(4, lines[2]), 4, `duplicate cvx record "08"`},
		{"lower-case MVX", with(5, "mvx\tmsd\tActive\t20121018\tMerck\n"), 5, "not a canonical MVX code"},
		{"duplicate product", with(5, lines[5]), 6, "duplicate product"},
		{"NDC form", with(9, "ndc\t58160082105\tuse\t43\tSKB\t\t\t\tx\ty\n"), 9, "not in the 5-4-2 form"},
		{"NDC kind", with(9, "ndc\t58160-0821-05\tbox\t43\tSKB\t\t\t\tx\ty\n"), 9, `NDC kind "box"`},
		{"source kind", with(2, "source\tvaccines\tpipe\tcvx.txt\t20240612\t2\n"), 2, "bad source record"},
		{"lower-case CPT", with(13, "cpt\t0001a\t08\t\tx\n"), 13, "not upper case"},
		{"control character", with(3, "cvx\t08\tActive\t0\t20180510\ta\x01\tb\n"), 3, "control character 0x01"},
		{"not UTF-8", with(3, "cvx\t08\tActive\t0\t20180510\ta\xff\tb\n"), 3, "not UTF-8"},
		{"end count", with(14, "end\t11\n"), 14, `end record counts "11" records, the snapshot has 12`},
		{"no end", strings.Join(lines[:13], ""), 13, "no end record"},
		{"after end", smallSnapshot + "cvx\t09\tActive\t0\t\ta\tb\n", 15, "data after the end record"},
	} {
		_, err := codes.Unmarshal([]byte(c.data))
		var pe *codes.ParseError
		if !errors.Is(err, codes.ErrFormat) || !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a ParseError wrapping ErrFormat", c.name, err)
			continue
		}
		if pe.Line != c.line || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %q (line %d), want line %d saying %q", c.name, err, pe.Line, c.line, c.says)
		}
	}
}
