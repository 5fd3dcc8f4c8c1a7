package ingest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/validate"
)

func TestDecode(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "vxu_basic.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	v := Decode(m)
	p := v.Patient
	if got := p.PrimaryID(); got != (Identifier{Value: "MRN-1001", Authority: "CLINIC-A", Type: "MR"}) {
		t.Errorf("primary id %+v", got)
	}
	if got := p.LegalName(); got.Family != "Müller" || got.Given != "Jürgen" || got.Middle != "Paul" || got.Type != "L" {
		t.Errorf("legal name %+v", got)
	}
	if p.MotherMaiden.Family != "O&Brien" || p.BirthDate != "20190402" || p.Sex != "M" || p.Protection != "N" {
		t.Errorf("patient %+v", p)
	}
	if len(p.Races) != 1 || p.Races[0].Code != "2106-3" || p.Races[0].System != "CDCREC" {
		t.Errorf("races %+v", p.Races)
	}
	if len(p.Addresses) != 1 || p.Addresses[0].Zip != "01101" || p.Addresses[0].City != "Springfield" {
		t.Errorf("addresses %+v", p.Addresses)
	}
	if len(p.Phones) != 1 || p.Phones[0].Area != "413" || p.Phones[0].Local != "5551234" {
		t.Errorf("phones %+v", p.Phones)
	}
	if len(v.NextOfKin) != 1 || v.NextOfKin[0].Relationship.Code != "MTH" || v.NextOfKin[0].Name.Given != "Greta" {
		t.Errorf("next of kin %+v", v.NextOfKin)
	}
	if len(v.Orders) != 1 {
		t.Fatalf("%d orders", len(v.Orders))
	}
	o := v.Orders[0]
	want := Order{
		Group: 1, OrderControl: "RE", FillerOrder: "ORD-5001^CLINIC-A",
		EnteredBy:        Provider{ID: "7824", Family: "Jackson", Given: "Lily", Authority: "CLINIC-A"},
		OrderingProvider: Provider{ID: "654", Family: "Thomas", Given: "Wilma", Authority: "CLINIC-A"},
		AdministeredAt:   "20240310",
		Vaccine:          Coded{Code: "08", Text: "Hep B, adolescent or pediatric", System: "CVX"},
		CVX:              "08", Amount: "0.5", Units: Coded{Code: "mL", Text: "milliliters", System: "UCUM"},
		InfoSource:        Coded{Code: "00", Text: "New immunization record", System: "NIP001"},
		AdministeredBy:    Provider{ID: "7824", Family: "Jackson", Given: "Lily", Authority: "CLINIC-A"},
		AdministeringSite: "FAC-A", Lots: []string{"LOT123A"}, LotExpiration: "20251231",
		Manufacturer:     Coded{Code: "MSD", Text: "Merck and Co., Inc.", System: "MVX"},
		CompletionStatus: "CP", ActionCode: "A",
		Route:    Coded{Code: "C28161", Text: "Intramuscular", System: "NCIT"},
		BodySite: Coded{Code: "LT", Text: "Left Thigh", System: "HL70163"},
	}
	obs := o.Observations
	o.Observations = nil
	if !reflect.DeepEqual(o, want) {
		t.Errorf("order\n got %+v\nwant %+v", o, want)
	}
	if o.Historical() {
		t.Error("RXA-9 00 is not historical")
	}
	if len(obs) != 4 || obs[0].Identifier.Code != "64994-7" || obs[0].Value.Code != "V02" || obs[2].Value.Code != "20230512" || obs[2].ValueType != "TS" {
		t.Errorf("observations %+v", obs)
	}
}

func TestGroupOf(t *testing.T) {
	msg := "MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rPID|1||X^^^A^MR\rOBX|1|CE|X||Y\rORC|RE\rRXA|0|1|20240101\rRXR|IM\rOBX|1\rNTE|1\rRXA|0|1|20240101\rOBX|1\rORC|RE\rRXA|0|1|20240101\r"
	m, err := hl7.Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3}
	if got := GroupOf(m); !reflect.DeepEqual(got, want) {
		t.Errorf("GroupOf = %v, want %v", got, want)
	}
	v := Decode(m)
	if len(v.Observations) != 1 || len(v.Orders) != 3 || len(v.Orders[0].Observations) != 1 || len(v.Orders[1].Observations) != 1 || v.Orders[2].OrderControl != "RE" || v.Orders[1].OrderControl != "" {
		t.Errorf("decode grouping: %d patient obs, %+v", len(v.Observations), v.Orders)
	}
}

func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "vxu_basic.hl7")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rRXA|0\rORC\rOBX\r"))
	f.Add([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rPID|1||1||~~a~\rRXA|0|1|2024||00006-4093-01^x^NDC~08\r"))
	res, err := validate.New(validate.Options{MaxSegments: 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := hl7.Parse(b)
		if err != nil {
			return
		}
		v := Decode(m)
		g := GroupOf(m)
		if len(g) != m.NumSegments() {
			t.Fatalf("GroupOf has %d entries for %d segments", len(g), m.NumSegments())
		}
		if n := m.Count("RXA"); n != len(v.Orders) {
			t.Fatalf("%d RXA but %d orders", n, len(v.Orders))
		}
		// With the validator as resolver: the same orders, a CVX wherever the plain decoder had
		// one, at most maxDecodeReps values per field, nothing decoded past the segment limit.
		r := DecodeWith(m, res)
		if m.NumSegments() > res.MaxSegments() {
			if len(r.Orders) != 0 || len(r.Patient.Names) != 0 {
				t.Fatalf("a message over the segment limit was decoded")
			}
			return
		}
		if len(r.Orders) != len(v.Orders) {
			t.Fatalf("%d orders with the resolver, %d without", len(r.Orders), len(v.Orders))
		}
		for i := range r.Orders {
			if v.Orders[i].CVX != "" && r.Orders[i].CVX == "" {
				t.Fatalf("order %d lost its CVX %q with the resolver", i, v.Orders[i].CVX)
			}
		}
		if len(r.Patient.Names) > maxDecodeReps || len(r.Patient.Identifiers) > maxDecodeReps {
			t.Fatalf("%d names, %d identifiers decoded", len(r.Patient.Names), len(r.Patient.Identifiers))
		}
	})
}

// TestDecodeResolvesCVX (issue 13.8): with the validator as resolver, every way a sender writes
// RXA-5 gives the dose its CVX.
func TestDecodeResolvesCVX(t *testing.T) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ rxa5, want string }{
		{"08^Hep B^CVX", "08"},
		{"8^Hep B^CVX", "08"},
		{"00006-4093-01^Recombivax HB^NDC", "08"},
		{"00006409301^Recombivax HB^NDC", "08"},
		{"Recombivax^Recombivax HB^99LOCAL^00006-4093-01^Recombivax HB^NDC", "08"},
		{"08^Hep B", "08"},
		{"00006-4093-01", "08"},
		{"99999-9999-99^Unknown^NDC", ""},
	} {
		m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rRXA|0|1|20240101||" + c.rxa5 + "\r"))
		if err != nil {
			t.Fatal(err)
		}
		d := DecodeWith(m, v)
		if len(d.Orders) != 1 || d.Orders[0].CVX != c.want {
			t.Errorf("RXA-5 %q: CVX %q, want %q", c.rxa5, d.Orders[0].CVX, c.want)
		}
	}
	if got := storableText("A\x00B\xff"); got != "A\uFFFDB\uFFFD" {
		t.Errorf("storableText = %q", got)
	}
}

// TestDecodeOwnsItsValues: what Decode returns shares nothing with the message's bytes (a
// transport may reuse its read buffer once the message is answered) nor between orders (the
// observations of all orders share one array, each order's slice capped at its own).
func TestDecodeOwnsItsValues(t *testing.T) {
	raw := []byte("MSH|^~\\&|EHR|FAC-A|IIS|IIS|20240310||VXU^V04^VXU_V04|C1|P|2.5.1\r" +
		"PID|1||MRN-1^^^FAC-A^MR||Doe^Jane^^^^^L||20200101|F\r" +
		"ORC|RE||O1^FAC-A\rOBX|1|ST|X^patient-level^LN||between ORC and RXA\r" +
		"RXA|0|1|20240310||08^HepB^CVX|0.5\rOBX|1|CE|64994-7^elig^LN|1|V02^VFC^HL70064\rOBX|2|TS|29768-9^pub^LN|2|20230512\r" +
		"RXA|0|1|20240310||10^IPV^CVX|0.5\rOBX|1|CE|64994-7^elig^LN|1|V01^Not VFC^HL70064\r")
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	v := Decode(m)
	if len(v.Orders) != 2 || len(v.Orders[0].Observations) != 2 || len(v.Orders[1].Observations) != 1 || len(v.Observations) != 1 {
		t.Fatalf("orders %d, observations %d/%d, patient-level %d", len(v.Orders),
			len(v.Orders[0].Observations), len(v.Orders[1].Observations), len(v.Observations))
	}
	if v.Observations[0].Value.Code != "between ORC and RXA" || v.Orders[0].FillerOrder != "O1^FAC-A" {
		t.Errorf("patient-level observation %+v, order %q", v.Observations[0], v.Orders[0].FillerOrder)
	}
	// Growing one order's observations leaves the next order's alone.
	v.Orders[0].Observations = append(v.Orders[0].Observations, Observation{SetID: "added"})
	if got := v.Orders[1].Observations[0].Value.Code; got != "V01" {
		t.Errorf("second order's observation reads %q after the first order's grew, want V01", got)
	}
	// The message's bytes overwritten (a reused buffer): the decoded values stay.
	for i := range raw {
		raw[i] = 'x'
	}
	if p := v.Patient.PrimaryID(); p.Value != "MRN-1" || v.Patient.LegalName().Family != "Doe" || v.Orders[1].CVX != "10" ||
		v.Orders[0].Observations[1].Value.Code != "20230512" {
		t.Errorf("decoded values changed with the message's bytes: %+v %+v", p, v.Orders[1])
	}
}
