package ack

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vaxgate/vaxgate/hl7"
)

// referenceHeaderOf is how HeaderOf read a header before HeaderFrom: each value its own string,
// each position located from the start. HeaderFrom must read the same header.
func referenceHeaderOf(m *hl7.Message) Header {
	h := Header{Delimiters: m.Delimiters()}
	msh, ok := m.Find("MSH", 1)
	if !ok {
		h.Delimiters = hl7.DefaultDelimiters
		return h
	}
	h.SendingApplication = referenceComponents(msh.Field(3))
	h.SendingFacility = referenceComponents(msh.Field(4))
	h.ReceivingApplication = referenceComponents(msh.Field(5))
	h.ReceivingFacility = referenceComponents(msh.Field(6))
	h.ControlID = msh.Field(10).String()
	h.ProcessingID = msh.Field(11).Component(1).String()
	h.MessageType = msh.Field(9).Component(1).String()
	h.TriggerEvent = msh.Field(9).Component(2).String()
	return h
}
func referenceComponents(f hl7.Field) []string {
	r := f.Rep(1)
	n := r.NumComponents()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.Component(i + 1).String()
	}
	return out
}

func checkHeader(t *testing.T, raw []byte) {
	t.Helper()
	m, _ := hl7.Parse(raw)
	want := referenceHeaderOf(m)
	st := hl7.NewStrings(m)
	for name, got := range map[string]Header{"HeaderOf": HeaderOf(m), "HeaderFrom": HeaderFrom(m, &st)} {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads\n%#v\nwant\n%#v", name, got, want)
		}
	}
}

// TestHeaderFromMatchesReference over the shared corpus and hand-made headers: long HDs, escapes,
// empty fields, other delimiters, MSH alone.
func TestHeaderFromMatchesReference(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "corpus", "*", "*.hl7"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkHeader(t, b)
	}
	for _, s := range []string{
		vxu,
		"MSH|^~\\&|A^B^C^D^E^F^G^H^I^J|F\\S\\X^^^|R|RF^1~RF2|2024||VXU^V04^VXU_V04|C\\T\\1|T^x|2.5.1",
		"MSH|^~\\&|||||||||||",
		"MSH$%*!@$EHR$K$IIS$$2024$$VXU%V04$C-1$P$2.5.1\r",
		"MSH|^~\\&",
		"MSH|^~\\&|A^^^^^^^^|B^1^2^3^4^5^6^7|C^1^2^3^4^5^6^7^8|\"\"|2024||ACK&x^A31|\"\"|P&T",
	} {
		checkHeader(t, []byte(s))
	}
}

func FuzzHeaderFrom(f *testing.F) {
	f.Add([]byte(vxu))
	f.Add([]byte("MSH|^~\\&|A^B^C^D^E^F^G^H^I^J|F\\S\\X^^^|R|RF^1~RF2|2024||VXU^V04|C|T"))
	f.Add([]byte("MSH$%*!@$EHR$K$IIS$$2024$$VXU%V04$C-1$P$2.5.1\r"))
	f.Fuzz(func(t *testing.T, raw []byte) { checkHeader(t, raw) })
}
