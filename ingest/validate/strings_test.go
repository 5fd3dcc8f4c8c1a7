package validate

import (
	"reflect"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// stringsSeeds are messages at the edges of hl7.Strings.PrintableText: printable ones, and ones
// with each thing the text pass looks for (a control character, a byte outside ASCII, valid
// UTF-8 or not, an escape sequence, \X..\ hiding a control character, in MSH-2 or after it).
var stringsSeeds = []string{
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||DOE^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||DOE^JA\x01NE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||DOE^JA\x7fNE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||M\xc3\xbcLLER^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||M\xfcLLER^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1|||||||8859/1\rPID|1||MRN^^^A^MR||M\xfcLLER^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1|||||||KOI8\rPID|1||MRN^^^A^MR||M\xfcLLER^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||DOE\\X01\\^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||DOE\\T\\^JANE\r",
	"MSH|^~\\X&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||MRN^^^A^MR||DOE^JANE\r",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\n\tPID|1||MRN^^^A^MR||DOE^JANE\r\n",
	"MSH|^~\\&|APP|FAC|||20240101||VXU^V04|1|P|2.5.1\rPID|1||" + string(make([]byte, 220)) + "\r",
}

// TestValidateStrings: ValidateStrings, which may skip the text pass's reading of the bytes, finds
// exactly what Validate finds, for the corpus and for the edge cases, and for a message whose
// strings were made before it was parsed again (PrintableText must then be false).
func TestValidateStrings(t *testing.T) {
	v, err := New(Options{Now: func() time.Time { return testNow }, SenderCharset: map[string]string{"LATIN": "8859/1"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := corpusMessages(t)
	for _, s := range stringsSeeds {
		msgs = append(msgs, []byte(s))
	}
	printable := 0
	for _, data := range msgs {
		m, err := hl7.Parse(data)
		if err != nil {
			continue
		}
		for _, shared := range []bool{false, true} {
			st := hl7.NewStrings(m)
			if shared {
				st = hl7.NewStringsShared(m)
			}
			if st.PrintableText(m) {
				printable++
			}
			for _, site := range []string{"", "LATIN"} {
				want := v.Validate(m, site)
				if got := v.ValidateStrings(m, site, st); !reflect.DeepEqual(got, want) {
					t.Errorf("%.60q site %q: ValidateStrings\n%v\nValidate\n%v", data, site, got, want)
				}
			}
		}
	}
	if printable == 0 {
		t.Error("no message was found printable: the text pass was never skipped")
	}
	// Strings made from a message parsed again since are not trusted.
	m, err := hl7.Parse([]byte(stringsSeeds[0]))
	if err != nil {
		t.Fatal(err)
	}
	st := hl7.NewStrings(m)
	if !st.PrintableText(m) {
		t.Fatal("a printable message is not PrintableText")
	}
	if err := m.Parse([]byte(stringsSeeds[1])); err != nil {
		t.Fatal(err)
	}
	if st.PrintableText(m) {
		t.Error("PrintableText of strings made before the message was parsed again")
	}
	if got, want := v.ValidateStrings(m, "", st), v.Validate(m, ""); !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("parsed again: ValidateStrings %v, Validate %v (want a control-character finding)", got, want)
	}
}

// FuzzValidateStrings: for any input, ValidateStrings with the message's strings finds exactly
// what Validate finds.
func FuzzValidateStrings(f *testing.F) {
	for _, s := range stringsSeeds {
		f.Add([]byte(s))
	}
	for _, m := range corpusMessages(f) {
		f.Add(m)
	}
	v, err := New(Options{Now: func() time.Time { return testNow }, SenderCharset: map[string]string{"LATIN": "8859/1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7.Parse(data)
		if err != nil {
			return
		}
		st := hl7.NewStringsShared(m)
		for _, site := range []string{"", "LATIN"} {
			want := v.Validate(m, site)
			if got := v.ValidateStrings(m, site, st); !reflect.DeepEqual(got, want) {
				t.Fatalf("site %q: ValidateStrings\n%v\nValidate\n%v", site, got, want)
			}
		}
	})
}

// BenchmarkValidateStrings validates the traffic of BenchmarkValidateBenchTraffic as the pipeline
// does, after making the message's shared strings (hl7.NewStringsShared): "Validate" reads every
// byte again in the text pass, "ValidateStrings" is told what making the strings found.
// ns/op is per message.
func BenchmarkValidateStrings(b *testing.B) {
	v, g := benchTraffic(b)
	var ms []*hl7.Message
	for range 4096 {
		ms = append(ms, mustParse(b, g.Next()))
	}
	b.Run("Validate", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := ms[i%len(ms)]
			st := hl7.NewStringsShared(m)
			_ = st
			v.Validate(m, "SITE1")
		}
	})
	b.Run("ValidateStrings", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := ms[i%len(ms)]
			v.ValidateStrings(m, "SITE1", hl7.NewStringsShared(m))
		}
	})
}
