package ingest

import (
	"slices"
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
	if l, ok := res.(interface{ MaxSegments() int }); ok && m.NumSegments() > l.MaxSegments() {
		return &VXU{}
	}
	return decodeWith(m, res, hl7.NewStrings(m))
}

// decodeWith is DecodeWith reading the values through st (hl7.NewStrings of m): the strings of
// the VXU share one copy of the message, the one the pipeline's record shares too.
func decodeWith(m *hl7.Message, res VaccineResolver, st hl7.Strings) *VXU {
	if l, ok := res.(interface{ MaxSegments() int }); ok && m.NumSegments() > l.MaxSegments() {
		return &VXU{}
	}
	// Every value is read through one decoder state: the strings share one copy of the message,
	// and each segment's fields are located in one pass.
	d := decoder{t: st, res: res, delim: m.Delimiters().Component}
	v := d.allocate(m)
	var cur *Order
	obsStart := 0 // where cur's observations start in d.obs
	pendingORC := hl7.Segment{}
	havePending := false
	for _, s := range m.Segments() {
		switch {
		case s.Is("PID"):
			d.pid(s, &v.Patient)
		case s.Is("PD1"):
			d.pd1(s, &v.Patient)
		case s.Is("NK1"):
			// Added, then decoded in place: a NextOfKin is large, and copying one into the heap
			// costs a write barrier per string while the collector runs.
			var k *NextOfKin
			v.NextOfKin, k = extend(v.NextOfKin)
			d.nk1(s, k)
		case s.Is("ORC"):
			pendingORC, havePending = s, true
			cur = nil
		case s.Is("RXA"):
			v.Orders, cur = extend(v.Orders)
			cur.Group = len(v.Orders)
			obsStart = len(d.obs)
			if havePending {
				d.orc(pendingORC, cur)
				havePending = false
			}
			d.rxa(s, cur)
		case s.Is("RXR"):
			if cur != nil {
				d.fields(s, 2)
				cur.Route = d.coded(d.f[1])
				cur.BodySite = d.coded(d.f[2])
			}
		case s.Is("OBX"):
			// Decoded in place, as NK1 is.
			if cur != nil {
				// The observations of an order follow its RXA: they are contiguous in d.obs.
				var o *Observation
				d.obs, o = extend(d.obs)
				d.obx(s, o)
				cur.Observations = d.obs[obsStart:len(d.obs):len(d.obs)]
			} else {
				var o *Observation
				v.Observations, o = extend(v.Observations)
				d.obx(s, o)
			}
		}
	}
	return v
}

// extend returns s with one more element, and that element, zero. While s has room, the element
// is the one past its end, already zero (the decoder's slices only grow, in memory allocated
// zeroed), and is not written again: appending a zero element copies it in, a write barrier per
// pointer of it while the collector runs (an Order has over a hundred).
func extend[T any](s []T) ([]T, *T) {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		var zero T
		s = append(s, zero)
	}
	return s, &s[len(s)-1]
}

// allocate makes the VXU of m in its memory (d.mem), and gives its slices, and d.obs, the capacity
// m's segments call for: orders, next of kin and observations are appended without growing (an
// Order is large, and growing copies it). The observations of all orders share d.obs, each
// order's slice capped at its own.
func (d *decoder) allocate(m *hl7.Message) *VXU {
	var nk1, rxa, obx int
	for _, s := range m.Segments() {
		switch {
		case s.Is("NK1"):
			nk1++
		case s.Is("RXA"):
			rxa++
		case s.Is("OBX"):
			obx++
		}
	}
	// The memory of up to four observations only when they are used: the memory of a VXU is
	// zeroed when it is allocated, and what is zeroed for nothing is time and cache lines too.
	if rxa > 0 && obx > 0 && obx <= len(vxuMemoryObs{}.obs) {
		x := new(vxuMemoryObs)
		d.mem, d.obs = &x.vxuMemory, x.obs[:0:obx]
	} else {
		d.mem = new(vxuMemory)
		if rxa > 0 && obx > 0 {
			d.obs = make([]Observation, 0, obx)
		}
	}
	v := &d.mem.v
	switch {
	case nk1 == 1:
		v.NextOfKin = d.mem.nk1[:0:1]
	case nk1 > 1:
		v.NextOfKin = make([]NextOfKin, 0, nk1)
	}
	if rxa > 0 {
		if rxa == 1 {
			v.Orders = d.mem.orders[:0:1]
		} else {
			v.Orders = make([]Order, 0, rxa)
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

// vxuMemory is a decoded VXU and the memory of what a usual VXU holds one of in its repeating
// fields and segments (a patient identifier, name, race, ethnicity, address and phone, one next
// of kin with an address and a phone, one vaccination with one lot number; vxuMemoryObs adds up
// to four observations, as funding eligibility and a VIS's three): one allocation rather than one
// for each.
// A field with more repetitions gets memory of its own for all of them; each array is used once
// (memTaken), so that two NK1 segments never share one.
type vxuMemory struct {
	v         VXU
	ids       [1]Identifier
	names     [1]Name
	races     [1]Coded
	eths      [1]Coded
	addrs     [1]Address
	phones    [1]Phone
	nk1       [1]NextOfKin
	nk1Addrs  [1]Address
	nk1Phones [1]Phone
	lots      [1]string
	orders    [1]Order // a message's only order (allocate)
	taken     memTaken
}

// vxuMemoryObs is a vxuMemory with the memory of the observations of a message's orders when
// they are at most four (allocate).
type vxuMemoryObs struct {
	vxuMemory
	obs [4]Observation
}

// memTaken records which arrays of a vxuMemory the decoder has handed out (a message may hold
// several PID, NK1 or RXA segments: only the first gets the memory).
type memTaken struct {
	pid, nk1, lots bool
}

// maxDecodeField is the last field number the decoder reads (PID-30).
const maxDecodeField = 30

// decoder reads the values of one message: strings from one shared copy of it, and the fields of
// the segment being read located in one pass (Field(n) for each n would count separators from the
// segment's start every time), the components of a value likewise.
type decoder struct {
	t     hl7.Strings
	res   VaccineResolver
	f     [maxDecodeField + 1]hl7.Field // f[n] is field n of the current segment
	c     [10]hl7.Component             // c[k-1] is component k of the current value
	obs   []Observation                 // the observations of the orders, in message order
	mem   *vxuMemory                    // the VXU's memory (vxuMemory)
	delim byte                          // the message's component separator
}

// fields locates fields 1..last of s in d.f.
func (d *decoder) fields(s hl7.Segment, last int) { s.FieldsInto(d.f[1 : last+1]) }

// comps locates components 1..n of r in d.c and returns them.
func (d *decoder) comps(r hl7.Rep, n int) []hl7.Component {
	c := d.c[:n]
	r.ComponentsInto(c)
	return c
}

// comps1 locates components 1..n of the first repetition of f in d.c and returns them.
func (d *decoder) comps1(f hl7.Field, n int) []hl7.Component {
	c := d.c[:n]
	f.ComponentsInto(c)
	return c
}

func (d *decoder) str(c hl7.Component) string { return d.t.Component(c) }

// first is the first subcomponent of c.
func (d *decoder) first(c hl7.Component) string { return d.t.Sub(c.Sub(1)) }

func (d *decoder) coded(f hl7.Field) Coded {
	var c Coded
	d.codedInto(f, &c)
	return c
}

// codedInto decodes the first repetition of f into c, which is zero: an empty field leaves it
// so. Decoding in place writes each string once (a Coded returned and then copied into the heap
// costs a copy and, while the collector runs, a write barrier per string of it, empty or not).
func (d *decoder) codedInto(f hl7.Field, c *Coded) {
	if f.IsEmpty() {
		return
	}
	d.codedComps(d.comps1(f, 6), c)
}

// codedRepInto decodes r into c, which is zero.
func (d *decoder) codedRepInto(r hl7.Rep, c *Coded) {
	if r.IsEmpty() {
		return
	}
	d.codedComps(d.comps(r, 6), c)
}

// codedComps decodes the six components x of a coded value into c.
func (d *decoder) codedComps(x []hl7.Component, c *Coded) {
	c.Code = d.str(x[0])
	c.Text = d.str(x[1])
	c.System = d.str(x[2])
	c.AltCode = d.str(x[3])
	c.AltText = d.str(x[4])
	c.AltSystem = d.str(x[5])
}

// decodeReps decodes the repetitions of f (at most maxDecodeReps) with dec, keeping those it
// reports as present; nil when none is. dec decodes into the (zero) element it is given, in place:
// the elements are large, and copying one into the heap costs a write barrier per string while
// the collector runs. They are decoded into mem (vxuMemory's array for the field) as far as it
// goes, into memory of their own past it. The result's capacity is its length, so that an append
// by a reader never writes into memory that is not its own.
func decodeReps[T any](f hl7.Field, mem []T, dec func(hl7.Rep, *T) bool) []T {
	out := mem[:0]
	for k, r := range f.Reps() {
		if k > maxDecodeReps {
			break
		}
		if len(out) == cap(out) {
			out = slices.Grow(out, 1)
		}
		out = out[:len(out)+1]
		if e := &out[len(out)-1]; !dec(r, e) {
			var zero T
			*e = zero
			out = out[:len(out)-1]
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out[:len(out):len(out)]
}

func (d *decoder) codedReps(f hl7.Field, mem []Coded) []Coded {
	return decodeReps(f, mem, func(r hl7.Rep, c *Coded) bool {
		d.codedRepInto(r, c)
		return !c.IsZero()
	})
}

// nameRepInto decodes r into n, which is zero (see codedInto).
func (d *decoder) nameRepInto(r hl7.Rep, n *Name) {
	if r.IsEmpty() {
		return
	}
	d.nameComps(d.comps(r, 7), n)
}

// nameInto decodes the first repetition of f into n, which is zero.
func (d *decoder) nameInto(f hl7.Field, n *Name) {
	if f.IsEmpty() {
		return
	}
	d.nameComps(d.comps1(f, 7), n)
}

// nameComps decodes the seven components c of a name into n.
func (d *decoder) nameComps(c []hl7.Component, n *Name) {
	n.Family = d.first(c[0])
	n.Given = d.str(c[1])
	n.Middle = d.str(c[2])
	n.Suffix = d.str(c[3])
	n.Prefix = d.str(c[4])
	n.Type = d.str(c[6])
}

func (d *decoder) addresses(f hl7.Field, mem []Address) []Address {
	return decodeReps(f, mem, func(r hl7.Rep, a *Address) bool {
		if r.IsEmpty() {
			return false
		}
		c := d.comps(r, 9)
		*a = Address{
			Street:  d.first(c[0]),
			Other:   d.str(c[1]),
			City:    d.str(c[2]),
			State:   d.str(c[3]),
			Zip:     d.str(c[4]),
			Country: d.str(c[5]),
			Type:    d.str(c[6]),
			County:  d.str(c[8]),
		}
		return true
	})
}

func (d *decoder) phones(f hl7.Field, mem []Phone) []Phone {
	return decodeReps(f, mem, func(r hl7.Rep, p *Phone) bool {
		if r.IsEmpty() {
			return false
		}
		c := d.comps(r, 8)
		*p = Phone{
			Use:       d.str(c[1]),
			Equipment: d.str(c[2]),
			Email:     d.str(c[3]),
			Area:      d.str(c[5]),
			Local:     d.str(c[6]),
			Extension: d.str(c[7]),
		}
		return true
	})
}

// providerInto decodes the first repetition of f into p, which is zero (see codedInto).
func (d *decoder) providerInto(f hl7.Field, p *Provider) {
	if f.IsEmpty() {
		return
	}
	c := d.comps1(f, 9)
	p.ID = d.str(c[0])
	p.Family = d.first(c[1])
	p.Given = d.str(c[2])
	p.Authority = d.first(c[8])
}

// comp1 is component 1 of the first repetition of f.
func (d *decoder) comp1(f hl7.Field) string { return d.t.Component(f.Component(1)) }

func (d *decoder) pid(s hl7.Segment, p *Patient) {
	d.fields(s, 30)
	f := &d.f
	m := d.mem
	var ids []Identifier
	var names []Name
	var races, eths []Coded
	var addrs []Address
	var phones []Phone
	if !m.taken.pid {
		m.taken.pid = true
		ids, names, races, eths, addrs, phones = m.ids[:0], m.names[:0], m.races[:0], m.eths[:0], m.addrs[:0], m.phones[:0]
	}
	p.Identifiers = decodeReps(f[3], ids, func(r hl7.Rep, id *Identifier) bool {
		c := d.comps(r, 5)
		if c[0].IsEmpty() {
			return false
		}
		*id = Identifier{Value: d.str(c[0]), Authority: d.first(c[3]), Type: d.str(c[4])}
		return true
	})
	p.Names = decodeReps(f[5], names, func(r hl7.Rep, n *Name) bool {
		if r.IsEmpty() {
			return false
		}
		d.nameRepInto(r, n)
		return true
	})
	p.MotherMaiden = Name{}
	d.nameInto(f[6], &p.MotherMaiden)
	p.BirthDate = d.comp1(f[7])
	p.Sex = d.t.Field(f[8])
	p.Races = d.codedReps(f[10], races)
	p.Addresses = d.addresses(f[11], addrs)
	p.Phones = d.phones(f[13], phones)
	p.Ethnicities = d.codedReps(f[22], eths)
	p.MultipleBirth = d.t.Field(f[24])
	p.BirthOrder = d.t.Field(f[25])
	p.DeathDate = d.comp1(f[29])
	p.DeathIndicator = d.t.Field(f[30])
}

func (d *decoder) pd1(s hl7.Segment, p *Patient) {
	d.fields(s, 18)
	p.Publicity = d.coded(d.f[11])
	p.Protection = d.t.Field(d.f[12])
	p.ProtectionDate = d.t.Field(d.f[13])
	p.RegistryStatus = d.t.Field(d.f[16])
	p.RegistryStatusDate = d.t.Field(d.f[17])
	p.PublicityDate = d.t.Field(d.f[18])
}

// nk1 decodes an NK1 segment into k (zero).
func (d *decoder) nk1(s hl7.Segment, k *NextOfKin) {
	d.fields(s, 5)
	m := d.mem
	var addrs []Address
	var phones []Phone
	if !m.taken.nk1 {
		m.taken.nk1 = true
		addrs, phones = m.nk1Addrs[:0], m.nk1Phones[:0]
	}
	k.SetID = d.t.Field(d.f[1])
	d.nameInto(d.f[2], &k.Name)
	d.codedInto(d.f[3], &k.Relationship)
	k.Addresses = d.addresses(d.f[4], addrs)
	k.Phones = d.phones(d.f[5], phones)
}

func (d *decoder) orc(s hl7.Segment, o *Order) {
	d.fields(s, 12)
	o.OrderControl = d.t.Field(d.f[1])
	o.PlacerOrder = d.entityID(d.f[2])
	o.FillerOrder = d.entityID(d.f[3])
	d.providerInto(d.f[10], &o.EnteredBy)
	d.providerInto(d.f[12], &o.OrderingProvider)
}

// entityID renders an EI as "id^namespace" (decoded, with ^ as the separator regardless of the
// message's delimiters) so that the same order number from one sender always compares equal.
func (d *decoder) entityID(f hl7.Field) string {
	c := d.comps1(f, 2)
	id := d.str(c[0])
	if id == "" {
		return ""
	}
	if ns := d.str(c[1]); ns != "" {
		// Both are their own bytes, joined by the message's '^': the message holds the text.
		if s, ok := d.t.Span(c[0], c[1]); ok && d.delim == '^' && len(s) == len(id)+1+len(ns) {
			return s
		}
		return id + "^" + ns
	}
	return id
}

func (d *decoder) rxa(s hl7.Segment, o *Order) {
	d.fields(s, 21)
	f := &d.f
	o.AdministeredAt = d.comp1(f[3])
	o.AdministeredEnd = d.comp1(f[4])
	d.codedInto(f[5], &o.Vaccine)
	for _, c := range [...][2]string{{o.Vaccine.System, o.Vaccine.Code}, {o.Vaccine.AltSystem, o.Vaccine.AltCode}} {
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
	if d.res != nil && !o.Vaccine.IsZero() {
		if cvx := d.res.VaccineCVX(o.Vaccine.Code, o.Vaccine.System, o.Vaccine.AltCode, o.Vaccine.AltSystem); cvx != "" {
			o.CVX = cvx
		}
	}
	o.Amount = d.t.Field(f[6])
	d.codedInto(f[7], &o.Units)
	d.codedInto(f[9], &o.InfoSource)
	d.providerInto(f[10], &o.AdministeredBy)
	o.AdministeringSite = d.t.Sub(f[11].Component(4).Sub(1))
	var lots []string
	if m := d.mem; !m.taken.lots {
		m.taken.lots = true
		lots = m.lots[:0]
	}
	o.Lots = decodeReps(f[15], lots, func(r hl7.Rep, lot *string) bool {
		*lot = d.t.Rep(r)
		return *lot != ""
	})
	o.LotExpiration = d.comp1(f[16])
	d.codedInto(f[17], &o.Manufacturer)
	d.codedInto(f[18], &o.RefusalReason)
	o.CompletionStatus = d.t.Field(f[20])
	o.ActionCode = d.t.Field(f[21])
}

// obx decodes an OBX segment into o (zero).
func (d *decoder) obx(s hl7.Segment, o *Observation) {
	d.fields(s, 17)
	f := &d.f
	o.SetID = d.t.Field(f[1])
	o.ValueType = d.t.Field(f[2])
	d.codedInto(f[3], &o.Identifier)
	o.SubID = d.t.Field(f[4])
	d.codedInto(f[6], &o.Units)
	o.Status = d.t.Field(f[11])
	o.ObservedAt = d.comp1(f[14])
	d.codedInto(f[17], &o.Method)
	switch o.ValueType {
	case "CE", "CWE", "CNE":
		d.codedInto(f[5], &o.Value)
	default:
		o.Value.Code = d.t.Field(f[5])
	}
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
