package ingest

import (
	"strings"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/hl7"
)

// Coded is an HL7 coded element (CE/CWE): a code, its text and its coding system, with the
// alternate triplet when the sender gave one.
type Coded struct {
	Code      string `json:"code,omitempty"`
	Text      string `json:"text,omitempty"`
	System    string `json:"system,omitempty"`
	AltCode   string `json:"alt_code,omitempty"`
	AltText   string `json:"alt_text,omitempty"`
	AltSystem string `json:"alt_system,omitempty"`
}

// IsZero reports whether nothing was coded.
func (c Coded) IsZero() bool { return c == Coded{} }

// Identifier is a patient identifier (PID-3, CX): value, assigning authority, identifier type.
type Identifier struct {
	Value     string `json:"value"`
	Authority string `json:"authority,omitempty"`
	Type      string `json:"type,omitempty"`
}

// Name is a person name (XPN).
type Name struct {
	Family string `json:"family,omitempty"`
	Given  string `json:"given,omitempty"`
	Middle string `json:"middle,omitempty"`
	Suffix string `json:"suffix,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Type   string `json:"type,omitempty"`
}

// Address is a postal address (XAD).
type Address struct {
	Street  string `json:"street,omitempty"`
	Other   string `json:"other,omitempty"`
	City    string `json:"city,omitempty"`
	State   string `json:"state,omitempty"`
	Zip     string `json:"zip,omitempty"`
	Country string `json:"country,omitempty"`
	Type    string `json:"type,omitempty"`
	County  string `json:"county,omitempty"`
}

// Phone is a telecommunication number (XTN).
type Phone struct {
	Use       string `json:"use,omitempty"`
	Equipment string `json:"equipment,omitempty"`
	Email     string `json:"email,omitempty"`
	Area      string `json:"area,omitempty"`
	Local     string `json:"local,omitempty"`
	Extension string `json:"extension,omitempty"`
}

// Patient is the patient of a VXU: PID and PD1 as reported.
type Patient struct {
	Identifiers    []Identifier `json:"identifiers"`
	Names          []Name       `json:"names,omitempty"`
	MotherMaiden   Name         `json:"mother_maiden,omitempty"`
	BirthDate      string       `json:"birth_date,omitempty"` // as sent, YYYYMMDD[HHMM[SS]]
	Sex            string       `json:"sex,omitempty"`
	Races          []Coded      `json:"races,omitempty"`
	Ethnicities    []Coded      `json:"ethnicities,omitempty"`
	Addresses      []Address    `json:"addresses,omitempty"`
	Phones         []Phone      `json:"phones,omitempty"`
	MultipleBirth  string       `json:"multiple_birth,omitempty"`
	BirthOrder     string       `json:"birth_order,omitempty"`
	DeathDate      string       `json:"death_date,omitempty"`
	DeathIndicator string       `json:"death_indicator,omitempty"`
	// PD1
	Publicity          Coded  `json:"publicity,omitempty"`       // PD1-11
	Protection         string `json:"protection,omitempty"`      // PD1-12: Y = protect (objection), N = share
	ProtectionDate     string `json:"protection_date,omitempty"` // PD1-13
	RegistryStatus     string `json:"registry_status,omitempty"` // PD1-16
	RegistryStatusDate string `json:"registry_status_date,omitempty"`
	PublicityDate      string `json:"publicity_date,omitempty"` // PD1-18
}

// PrimaryID is the identifier the sender knows the patient by: the first MR, else the first one.
func (p *Patient) PrimaryID() Identifier {
	for _, id := range p.Identifiers {
		if id.Type == "MR" {
			return id
		}
	}
	if len(p.Identifiers) > 0 {
		return p.Identifiers[0]
	}
	return Identifier{}
}

// LegalName is the first name of type L, else the first name.
func (p *Patient) LegalName() Name {
	for _, n := range p.Names {
		if n.Type == "L" {
			return n
		}
	}
	if len(p.Names) > 0 {
		return p.Names[0]
	}
	return Name{}
}

// NextOfKin is an NK1 segment.
type NextOfKin struct {
	SetID        string    `json:"set_id,omitempty"`
	Name         Name      `json:"name"`
	Relationship Coded     `json:"relationship,omitempty"`
	Addresses    []Address `json:"addresses,omitempty"`
	Phones       []Phone   `json:"phones,omitempty"`
}

// Observation is an OBX segment.
type Observation struct {
	SetID      string `json:"set_id,omitempty"`
	ValueType  string `json:"value_type,omitempty"`
	Identifier Coded  `json:"identifier"`
	SubID      string `json:"sub_id,omitempty"`
	Value      Coded  `json:"value"` // for CE/CWE the code triplet; otherwise Value.Code holds the value
	Units      Coded  `json:"units,omitempty"`
	Status     string `json:"status,omitempty"`
	ObservedAt string `json:"observed_at,omitempty"` // OBX-14
	Method     Coded  `json:"method,omitempty"`      // OBX-17
}

// Provider is an XCN: a person who ordered, entered or administered.
type Provider struct {
	ID        string `json:"id,omitempty"`
	Family    string `json:"family,omitempty"`
	Given     string `json:"given,omitempty"`
	Authority string `json:"authority,omitempty"`
}

// Order is one order group: ORC, RXA, RXR and the observations about the vaccination.
type Order struct {
	Group            int      `json:"group"` // 1-based, the order of the RXA in the message
	OrderControl     string   `json:"order_control,omitempty"`
	PlacerOrder      string   `json:"placer_order,omitempty"`
	FillerOrder      string   `json:"filler_order,omitempty"` // ORC-3 as "id^namespace"
	EnteredBy        Provider `json:"entered_by,omitempty"`
	OrderingProvider Provider `json:"ordering_provider,omitempty"`

	// RXA
	AdministeredAt    string        `json:"administered_at"` // RXA-3 as sent
	AdministeredEnd   string        `json:"administered_end,omitempty"`
	Vaccine           Coded         `json:"vaccine"` // RXA-5
	CVX               string        `json:"cvx,omitempty"`
	NDC               string        `json:"ndc,omitempty"`
	Amount            string        `json:"amount,omitempty"`
	Units             Coded         `json:"units,omitempty"`
	InfoSource        Coded         `json:"info_source,omitempty"` // RXA-9
	AdministeredBy    Provider      `json:"administered_by,omitempty"`
	AdministeringSite string        `json:"administering_site,omitempty"` // RXA-11.4
	Lots              []string      `json:"lots,omitempty"`
	LotExpiration     string        `json:"lot_expiration,omitempty"`
	Manufacturer      Coded         `json:"manufacturer,omitempty"` // RXA-17
	RefusalReason     Coded         `json:"refusal_reason,omitempty"`
	CompletionStatus  string        `json:"completion_status,omitempty"`
	ActionCode        string        `json:"action_code,omitempty"`
	Route             Coded         `json:"route,omitempty"`
	BodySite          Coded         `json:"body_site,omitempty"`
	Observations      []Observation `json:"observations,omitempty"`
}

// Historical reports whether the dose is a historical record (RXA-9 other than 00).
func (o *Order) Historical() bool {
	return o.InfoSource.Code != "" && o.InfoSource.Code != "00"
}

// VXU is the immunization meaning of a VXU^V04 message.
type VXU struct {
	Patient      Patient       `json:"patient"`
	NextOfKin    []NextOfKin   `json:"next_of_kin,omitempty"`
	Observations []Observation `json:"observations,omitempty"` // patient-level OBX (before any order)
	Orders       []Order       `json:"orders,omitempty"`
}

// VaccineResolver reads RXA-5 as the registry does: the CVX code a vaccine code stands for,
// whether it was sent as CVX, as NDC (in RXA-5.1 or the alternate RXA-5.4), as CPT, or without its
// coding system; "" when it names no vaccine the code sets know. ingest/validate implements it
// with the same code sets it validates with, so that a dose validation accepted is stored with
// its CVX.
type VaccineResolver interface {
	VaccineCVX(code, system, altCode, altSystem string) string
}

// maxDecodeReps bounds the repetitions Decode reads in one field. Validation rejects messages with
// more repetitions than its (configurable, lower) limit long before; this bound only keeps the
// memory of a decoded message in proportion to what a registry can use.
const maxDecodeReps = 1000

// Decode reads the immunization content of a parsed VXU. It never fails: what is missing is left
// empty, and validation says what that means. Without a resolver, a vaccination's CVX is only the
// code of a CVX triplet in RXA-5; the pipeline uses DecodeWith.
func Decode(m *hl7.Message) *VXU { return DecodeWith(m, nil) }

// resolverOf returns the validator's VaccineResolver, or nil when it has none.
func resolverOf(v Validator) VaccineResolver {
	r, _ := v.(VaccineResolver)
	return r
}

// DecodeWith is Decode with RXA-5 read by res: every vaccination whose code res knows gets its CVX,
// whatever coding system the sender used. It reads the message once, in time proportional to its
// size.
//
// When res also says how many segments a message may hold (MaxSegments, as the validator does),
// a message over that limit, which validation rejects as a whole, is not decoded at all: its
// content would be thrown away, and decoding it would cost memory in proportion to its size.
func DecodeWith(m *hl7.Message, res VaccineResolver) *VXU {
	v := &VXU{}
	if l, ok := res.(interface{ MaxSegments() int }); ok && m.NumSegments() > l.MaxSegments() {
		return v
	}
	var cur *Order
	pendingORC := hl7.Segment{}
	havePending := false
	for _, s := range m.Segments() {
		switch {
		case s.Is("PID"):
			decodePID(s, &v.Patient)
		case s.Is("PD1"):
			decodePD1(s, &v.Patient)
		case s.Is("NK1"):
			v.NextOfKin = append(v.NextOfKin, decodeNK1(s))
		case s.Is("ORC"):
			pendingORC, havePending = s, true
			cur = nil
		case s.Is("RXA"):
			v.Orders = append(v.Orders, Order{Group: len(v.Orders) + 1})
			cur = &v.Orders[len(v.Orders)-1]
			if havePending {
				decodeORC(pendingORC, cur)
				havePending = false
			}
			decodeRXA(s, cur, res)
		case s.Is("RXR"):
			if cur != nil {
				cur.Route = coded(s.Field(1))
				cur.BodySite = coded(s.Field(2))
			}
		case s.Is("OBX"):
			o := decodeOBX(s)
			if cur != nil {
				cur.Observations = append(cur.Observations, o)
			} else {
				v.Observations = append(v.Observations, o)
			}
		}
	}
	return v
}

// GroupOf returns the 1-based order group each segment of m belongs to (0 for segments outside any
// order), by the same rule Decode uses: an ORC belongs to the RXA that follows it, RXR, OBX and NTE
// to the RXA before them.
func GroupOf(m *hl7.Message) []int {
	groups := make([]int, m.NumSegments())
	n := 0
	orcAt := -1
	inGroup := false
	for i, s := range m.Segments() {
		switch {
		case s.Is("ORC"):
			orcAt = i
			inGroup = false
		case s.Is("RXA"):
			n++
			if orcAt >= 0 {
				groups[orcAt] = n
				orcAt = -1
			}
			groups[i] = n
			inGroup = true
		default:
			if inGroup {
				groups[i] = n
			}
		}
	}
	return groups
}

func coded(f hl7.Field) Coded { return codedRep(f.Rep(1)) }

func codedRep(r hl7.Rep) Coded {
	return Coded{
		Code:      r.Component(1).String(),
		Text:      r.Component(2).String(),
		System:    r.Component(3).String(),
		AltCode:   r.Component(4).String(),
		AltText:   r.Component(5).String(),
		AltSystem: r.Component(6).String(),
	}
}

func codedReps(f hl7.Field) []Coded {
	var out []Coded
	for k, r := range f.Reps() {
		if k > maxDecodeReps {
			break
		}
		if c := codedRep(r); !c.IsZero() {
			out = append(out, c)
		}
	}
	return out
}

func nameRep(r hl7.Rep) Name {
	return Name{
		Family: r.Component(1).Sub(1).String(),
		Given:  r.Component(2).String(),
		Middle: r.Component(3).String(),
		Suffix: r.Component(4).String(),
		Prefix: r.Component(5).String(),
		Type:   r.Component(7).String(),
	}
}

func addresses(f hl7.Field) []Address {
	var out []Address
	for k, r := range f.Reps() {
		if k > maxDecodeReps {
			break
		}
		if r.IsEmpty() {
			continue
		}
		out = append(out, Address{
			Street:  r.Component(1).Sub(1).String(),
			Other:   r.Component(2).String(),
			City:    r.Component(3).String(),
			State:   r.Component(4).String(),
			Zip:     r.Component(5).String(),
			Country: r.Component(6).String(),
			Type:    r.Component(7).String(),
			County:  r.Component(9).String(),
		})
	}
	return out
}

func phones(f hl7.Field) []Phone {
	var out []Phone
	for k, r := range f.Reps() {
		if k > maxDecodeReps {
			break
		}
		if r.IsEmpty() {
			continue
		}
		out = append(out, Phone{
			Use:       r.Component(2).String(),
			Equipment: r.Component(3).String(),
			Email:     r.Component(4).String(),
			Area:      r.Component(6).String(),
			Local:     r.Component(7).String(),
			Extension: r.Component(8).String(),
		})
	}
	return out
}

func provider(f hl7.Field) Provider {
	r := f.Rep(1)
	return Provider{
		ID:        r.Component(1).String(),
		Family:    r.Component(2).Sub(1).String(),
		Given:     r.Component(3).String(),
		Authority: r.Component(9).Sub(1).String(),
	}
}

func decodePID(s hl7.Segment, p *Patient) {
	for k, r := range s.Field(3).Reps() {
		if k > maxDecodeReps {
			break
		}
		if r.Component(1).IsEmpty() {
			continue
		}
		p.Identifiers = append(p.Identifiers, Identifier{
			Value:     r.Component(1).String(),
			Authority: r.Component(4).Sub(1).String(),
			Type:      r.Component(5).String(),
		})
	}
	for k, r := range s.Field(5).Reps() {
		if k > maxDecodeReps {
			break
		}
		if !r.IsEmpty() {
			p.Names = append(p.Names, nameRep(r))
		}
	}
	p.MotherMaiden = nameRep(s.Field(6).Rep(1))
	p.BirthDate = s.Field(7).Component(1).String()
	p.Sex = s.Field(8).String()
	p.Races = codedReps(s.Field(10))
	p.Addresses = addresses(s.Field(11))
	p.Phones = phones(s.Field(13))
	p.Ethnicities = codedReps(s.Field(22))
	p.MultipleBirth = s.Field(24).String()
	p.BirthOrder = s.Field(25).String()
	p.DeathDate = s.Field(29).Component(1).String()
	p.DeathIndicator = s.Field(30).String()
}

func decodePD1(s hl7.Segment, p *Patient) {
	p.Publicity = coded(s.Field(11))
	p.Protection = s.Field(12).String()
	p.ProtectionDate = s.Field(13).String()
	p.RegistryStatus = s.Field(16).String()
	p.RegistryStatusDate = s.Field(17).String()
	p.PublicityDate = s.Field(18).String()
}

func decodeNK1(s hl7.Segment) NextOfKin {
	return NextOfKin{
		SetID:        s.Field(1).String(),
		Name:         nameRep(s.Field(2).Rep(1)),
		Relationship: coded(s.Field(3)),
		Addresses:    addresses(s.Field(4)),
		Phones:       phones(s.Field(5)),
	}
}

func decodeORC(s hl7.Segment, o *Order) {
	o.OrderControl = s.Field(1).String()
	o.PlacerOrder = entityID(s.Field(2))
	o.FillerOrder = entityID(s.Field(3))
	o.EnteredBy = provider(s.Field(10))
	o.OrderingProvider = provider(s.Field(12))
}

// entityID renders an EI as "id^namespace" (decoded, with ^ as the separator regardless of the
// message's delimiters) so that the same order number from one sender always compares equal.
func entityID(f hl7.Field) string {
	id := f.Component(1).String()
	if id == "" {
		return ""
	}
	if ns := f.Component(2).String(); ns != "" {
		return id + "^" + ns
	}
	return id
}

func decodeRXA(s hl7.Segment, o *Order, res VaccineResolver) {
	o.AdministeredAt = s.Field(3).Component(1).String()
	o.AdministeredEnd = s.Field(4).Component(1).String()
	o.Vaccine = coded(s.Field(5))
	for _, c := range [][2]string{{o.Vaccine.System, o.Vaccine.Code}, {o.Vaccine.AltSystem, o.Vaccine.AltCode}} {
		switch c[0] {
		case "CVX":
			if o.CVX == "" {
				o.CVX = c[1]
			}
		case "NDC":
			if o.NDC == "" {
				o.NDC = c[1]
			}
		}
	}
	if res != nil && !o.Vaccine.IsZero() {
		if cvx := res.VaccineCVX(o.Vaccine.Code, o.Vaccine.System, o.Vaccine.AltCode, o.Vaccine.AltSystem); cvx != "" {
			o.CVX = cvx
		}
	}
	o.Amount = s.Field(6).String()
	o.Units = coded(s.Field(7))
	o.InfoSource = coded(s.Field(9))
	o.AdministeredBy = provider(s.Field(10))
	o.AdministeringSite = s.Field(11).Component(4).Sub(1).String()
	for k, r := range s.Field(15).Reps() {
		if k > maxDecodeReps {
			break
		}
		if lot := r.String(); lot != "" {
			o.Lots = append(o.Lots, lot)
		}
	}
	o.LotExpiration = s.Field(16).Component(1).String()
	o.Manufacturer = coded(s.Field(17))
	o.RefusalReason = coded(s.Field(18))
	o.CompletionStatus = s.Field(20).String()
	o.ActionCode = s.Field(21).String()
}

func decodeOBX(s hl7.Segment) Observation {
	o := Observation{
		SetID:      s.Field(1).String(),
		ValueType:  s.Field(2).String(),
		Identifier: coded(s.Field(3)),
		SubID:      s.Field(4).String(),
		Units:      coded(s.Field(6)),
		Status:     s.Field(11).String(),
		ObservedAt: s.Field(14).Component(1).String(),
		Method:     coded(s.Field(17)),
	}
	switch o.ValueType {
	case "CE", "CWE", "CNE":
		o.Value = coded(s.Field(5))
	default:
		o.Value = Coded{Code: s.Field(5).String()}
	}
	return o
}

// storableHeader makes the header values a record is archived under (control ID, facility,
// message type) storable as PostgreSQL text: a NUL, which text columns refuse, becomes U+FFFD, as
// invalid UTF-8 already does. A message with such a value is rejected by validation
// (control-character) and archived without its resend key; without this, its archive row would
// fail the batch and the sender would be told "internal error, send it again" forever.
func storableHeader(rec *Record) {
	rec.ControlID = storableText(rec.ControlID)
	rec.Facility = storableText(rec.Facility)
	rec.MessageType = storableText(rec.MessageType)
}

func storableText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
