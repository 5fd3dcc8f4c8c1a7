package validate

import (
	"bytes"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// vaccinations checks each vaccination (order group): what the dose is (CVX, NDC, MVX, product), what
// it needs as administered or historical, refusals, 998, its dates and its observations.
func (r *run) vaccinations() {
	for k := range r.orders {
		r.order(&r.orders[k])
	}
}

// routes162 are the HL7 table 0162 route codes the guide's earlier releases used; the NCIT codes
// replaced them and senders still send both.
var routes162 = valueSet{id: "HL70162", name: "Route of administration (HL7 table 0162)", codes: []string{
	"ID", "IM", "IN", "IV", "NS", "OTH", "PO", "SC", "TD",
}}

func (r *run) order(o *orderGroup) {
	i := o.rxa

	// What kind of report this is: RXA-20 (empty means CP), RXA-9 (administered or historical).
	// The status as a constant string: converting the bytes would allocate for every dose.
	switch st := r.fcomp(i, 20, 1); string(st) {
	case "":
		o.status, o.given = "", true
	case "CP":
		o.status, o.given = "CP", true
	case "PA":
		o.status, o.given = "PA", true
	case "NA":
		o.status = "NA"
	case "RE":
		o.status = "RE"
	default:
		r.report(ruleRXA20Value, i, r.loc(i, 20, 0, 0), args{value: quote(st)})
		o.status, o.given = "??", true
	}
	r.source(o)

	// RXA-1, RXA-2 (IZ-28, IZ-29).
	if v := r.fld(i, 1); len(v) > 0 && string(v) != "0" {
		r.report(ruleSubIDCounter, i, r.loc(i, 1, 0, 0), args{value: quote(v), detail: "RXA-1 = 0"})
	}
	if v := r.fld(i, 2); len(v) > 0 && string(v) != "1" {
		r.report(ruleSubIDCounter, i, r.loc(i, 2, 0, 0), args{value: quote(v), detail: "RXA-2 = 1"})
	}

	// Dates.
	if t, ok := parseDTM(r.fcomp(i, 3, 1)); ok && t.digits >= 8 {
		o.rxaDate = t.date
		r.adminDate(o)
	}
	if end := r.fcomp(i, 4, 1); len(end) > 0 && !isNullBytes(end) &&
		!bytes.Equal(end, r.fcomp(i, 3, 1)) {
		r.report(ruleRXA4Mismatch, i, r.loc(i, 4, 0, 0), args{value: quote(end)})
	}

	r.vaccineCode(o)
	r.amount(o)
	r.refusal(o)
	r.action(o)
	r.lotAndManufacturer(o)
	r.route(o)
	r.orc(o)
	r.facilityAddress(i)
	r.observations(o)
}

// source decides whether the dose was administered by the sender (RXA-9 = 00) or is history.
func (r *run) source(o *orderGroup) {
	i := o.rxa
	code := r.fcomp(i, 9, 1)
	lot := len(r.fld(i, 15)) > 0
	assumed := func() string {
		if lot {
			o.admin = true
			return "administered, since it has a lot number"
		}
		return "historical"
	}
	switch {
	case !o.given:
		if len(code) > 0 {
			r.report(ruleRXA9NotAllowed, i, r.loc(i, 9, 0, 0), args{})
		}
	case len(code) == 0:
		r.report(ruleRXA9Missing, i, r.loc(i, 9, 0, 0), args{detail: assumed()})
	case !z22ValueSets[vsNIP001].has(code):
		r.report(ruleRXA9Value, i, r.loc(i, 9, 1, 1), args{value: quote(code), detail: assumed()})
	case string(code) == "00":
		o.admin = true
	default:
		o.historicalSource = true
	}
}

func (r *run) adminDate(o *orderGroup) {
	i, d := o.rxa, o.rxaDate
	switch {
	case d > r.today:
		r.report(ruleAdminFuture, i, r.loc(i, 3, 0, 0), args{value: d.String()})
	case r.birth != 0 && d < r.birth:
		r.report(ruleAdminBeforeBirth, i, r.loc(i, 3, 0, 0), args{value: d.String(), detail: r.birth.String()})
	case r.death != 0 && d > r.death:
		r.report(ruleAdminAfterDeath, i, r.loc(i, 3, 0, 0), args{value: d.String(), detail: r.death.String()})
	case r.msgDate != 0 && d.days() > r.msgDate.days()+1:
		r.report(ruleAdminAfterMessage, i, r.loc(i, 3, 0, 0), args{value: d.String(), detail: r.msgDate.String()})
	}
}

// vaccineCode reads RXA-5 as a CVX (preferred), an NDC or a CPT code, and checks the code's CDC
// status against the kind of report.
func (r *run) vaccineCode(o *orderGroup) {
	i := o.rxa
	rep := r.rep1(i, 5)
	if len(rep) == 0 || isNullBytes(rep) {
		return // rxa-5-missing
	}
	var trip [2]struct{ code, system []byte }
	var c [6][]byte
	r.comps(rep, c[:])
	trip[0].code, trip[0].system = c[0], c[2]
	trip[1].code, trip[1].system = c[3], c[5]
	loc := r.loc(i, 5, 0, 1)
	var ndcMVX string
	found := false
	// A CVX triplet wins wherever it is.
	for k, t := range trip {
		if len(t.code) == 0 || string(t.system) != "CVX" {
			continue
		}
		found = true
		loc.Component = 1 + 3*k
		if o.cvx = r.v.tab.vaccine(t.code); o.cvx == nil {
			r.report(ruleCVXUnknown, i, loc, args{value: quote(t.code)})
			return
		}
		break
	}
	if !found {
		for k, t := range trip {
			if len(t.code) == 0 || string(t.system) != "NDC" {
				continue
			}
			found = true
			loc.Component = 1 + 3*k
			n, ok := r.v.codes.NDC(string(t.code))
			if !ok {
				r.report(ruleNDCUnknown, i, loc, args{value: quote(t.code)})
				return
			}
			ndcMVX = n.MVX
			o.cvx = r.v.tab.vaccines[n.CVX]
			break
		}
	}
	if !found {
		// No CVX or NDC named: read the code the way a registry would, and say so.
		t := trip[0]
		loc.Component = 1
		detail := ""
		switch {
		case string(t.system) == "CPT" || string(t.system) == "C4":
			if m := r.v.codes.CPT(string(t.code)); len(m) > 0 {
				o.cvx = r.v.tab.vaccines[m[0].CVX]
				detail = m[0].CVX + " (CDC CPT mapping)"
			}
		default:
			if o.cvx = r.v.tab.vaccine(t.code); o.cvx != nil {
				detail = o.cvx.cvx
			} else if n, ok := r.v.codes.NDC(string(t.code)); ok {
				ndcMVX = n.MVX
				o.cvx = r.v.tab.vaccines[n.CVX]
				detail = n.CVX + " (from NDC " + n.NDC + ")"
			}
		}
		if o.cvx == nil {
			r.report(ruleRXA5Unknown, i, loc, args{value: quote(rep)})
			return
		}
		r.report(ruleRXA5System, i, r.loc(i, 5, 0, 3), args{value: quote(rep), detail: detail})
	}
	if o.cvx == nil {
		return
	}
	o.ndcMVX = ndcMVX
	r.crossNDC(o, trip[:])
	v := o.cvx
	what := args{value: v.cvx, detail: v.name}
	admin := o.given && o.admin
	switch {
	case v.cvx == "998":
		if o.given {
			st := o.status
			if st == "" {
				st = "empty (CP)"
			}
			r.report(rule998Given, i, r.loc(i, 20, 0, 0), args{value: st})
		}
		if o.obxFrom == o.obxTo {
			r.report(rule998NoObservation, i, loc, args{})
		}
	case v.status == codes.StatusNeverActive:
		r.report(ruleCVXNeverActive, i, loc, what)
	case v.status == codes.StatusPending:
		r.report(ruleCVXPending, i, loc, what)
	case !admin:
	case v.cvx == "999":
		r.report(ruleCVX999, i, loc, what)
	case v.status == codes.StatusNonUS:
		r.report(ruleCVXNonUS, i, loc, what)
	case v.unspecified:
		// Before the inactive check: unspecified codes are inactive too, and "send the exact
		// product" is the useful answer.
		r.report(ruleCVXUnspecified, i, loc, what)
	case v.status == codes.StatusInactive && o.rxaDate != 0 && o.rxaDate >= v.updated:
		// The CDC marks codes inactive when products leave the market; a dose given before the
		// code's last update was probably given while it was active.
		r.report(ruleCVXInactive, i, loc, what)
	}
	// Age: only for doses given, when both dates are known.
	if o.given && r.birth != 0 && o.rxaDate != 0 && o.rxaDate >= r.birth && v.ages != "" {
		age := o.rxaDate.days() - r.birth.days()
		if v.minDays > 0 && age < v.minDays || v.maxDays > 0 && age > v.maxDays {
			r.report(ruleAgeImplausible, i, loc, args{value: v.cvx + " (" + v.name + ")",
				detail: ageText(r.birth, o.rxaDate) + "; it is given " + v.ages})
		}
	}
}

// crossNDC checks an NDC sent beside the CVX that was read (RXA-5 CVX with the alternate NDC,
// or the reverse): it must be a vaccine NDC the CDC lists, and the CDC must map it to that CVX.
func (r *run) crossNDC(o *orderGroup, trip []struct{ code, system []byte }) {
	i := o.rxa
	for k, t := range trip {
		if len(t.code) == 0 || string(t.system) != "NDC" {
			continue
		}
		loc := r.loc(i, 5, 0, 1+3*k)
		entries := r.v.codes.NDCs(string(t.code))
		if len(entries) == 0 {
			r.report(ruleNDCAltUnknown, i, loc, args{value: quote(t.code), detail: o.cvx.cvx})
			return
		}
		for _, e := range entries {
			if codes.NormalizeCVX(e.CVX) == o.cvx.cvx {
				return
			}
		}
		r.report(ruleCVXNDCMismatch, i, loc, args{value: quote(t.code), detail: "CVX " + entries[0].CVX + ", not CVX " + o.cvx.cvx})
		return
	}
}

// VaccineCVX reads an RXA-5 coded element the way validation reads it (ingest.VaccineResolver):
// a CVX triplet wherever it is, else an NDC triplet mapped by the CDC NDC tables, else a CPT code
// mapped by the CDC, else a code without its coding system read as a CVX or an NDC. It returns
// the canonical CVX code, or "" when the code names no vaccine the code sets know.
func (v *Validator) VaccineCVX(code, system, altCode, altSystem string) string {
	trip := [2][2]string{{code, system}, {altCode, altSystem}}
	for _, t := range trip {
		if t[0] != "" && t[1] == "CVX" {
			if x := v.tab.vaccine([]byte(t[0])); x != nil {
				return x.cvx
			}
			return ""
		}
	}
	for _, t := range trip {
		if t[0] != "" && t[1] == "NDC" {
			if n, ok := v.codes.NDC(t[0]); ok {
				return codes.NormalizeCVX(n.CVX)
			}
			return ""
		}
	}
	switch {
	case code == "":
		return ""
	case system == "CPT" || system == "C4":
		if m := v.codes.CPT(code); len(m) > 0 {
			return codes.NormalizeCVX(m[0].CVX)
		}
	default:
		if x := v.tab.vaccine([]byte(code)); x != nil {
			return x.cvx
		}
		if n, ok := v.codes.NDC(code); ok {
			return codes.NormalizeCVX(n.CVX)
		}
	}
	return ""
}

// amount checks RXA-6 against what the report says and RXA-7.
func (r *run) amount(o *orderGroup) {
	i := o.rxa
	raw := r.rep1(i, 6)
	amt, ok := parseAmount(raw)
	if !ok {
		return // rxa-6-missing or rxa-6-invalid
	}
	is999 := amt == 999000
	notGiven := ""
	switch {
	case o.cvx != nil && o.cvx.cvx == "998":
		notGiven = "RXA-5 = 998"
	case o.status == "RE":
		notGiven = "a refusal (RXA-20 = RE)"
	}
	if notGiven != "" && !is999 {
		r.report(ruleAmount999, i, r.loc(i, 6, 0, 0), args{value: quote(raw), detail: notGiven})
	}
	if o.given && o.admin && amt <= 0 {
		r.report(ruleAmountZero, i, r.loc(i, 6, 0, 0), args{value: quote(raw)})
	}
	if !is999 && len(r.fld(i, 7)) == 0 {
		r.report(ruleRXA7Missing, i, r.loc(i, 7, 0, 0), args{value: quote(raw)})
	}
}

// refusal checks RXA-18 against RXA-20 (Z22 predicate on RXA-18, constraint IZ-32).
func (r *run) refusal(o *orderGroup) {
	i := o.rxa
	reason := r.fcomp(i, 18, 1)
	switch {
	case o.status == "RE" && len(reason) == 0:
		r.report(ruleRefusalReasonMissing, i, r.loc(i, 18, 0, 0), args{})
	case o.status != "RE" && len(reason) > 0:
		st := o.status
		if st == "" {
			st = "empty (CP)"
		}
		r.report(ruleRefusalReasonNotAllowed, i, r.loc(i, 18, 0, 0), args{value: st})
	}
	if len(reason) > 0 && !localSystem(r.fcomp(i, 18, 3)) && !z22ValueSets[vsNIP002].has(reason) {
		r.report(ruleRXA18Value, i, r.loc(i, 18, 1, 1), args{value: quote(reason)})
	}
}

// action checks RXA-21 (required unless RXA-5 is 998).
func (r *run) action(o *orderGroup) {
	i := o.rxa
	v := r.fld(i, 21)
	switch {
	case len(v) == 0:
		if o.cvx == nil || o.cvx.cvx != "998" {
			r.report(ruleActionMissing, i, r.loc(i, 21, 0, 0), args{})
		}
	case !z22ValueSets[vsHL70323IZ].has(v):
		r.report(ruleRXA21Value, i, r.loc(i, 21, 0, 0), args{value: quote(v)})
	}
}

// lotPlaceholders are what systems send when they have no lot number. Compared in upper case.
var lotPlaceholders = []string{"0", "00", "000", "NA", "N/A", "NONE", "UNK", "UNKNOWN", "-", "--", "X", "XX", "XXX", "?", "NULL", "NOLOT", "NO LOT", "TEST", "LOT"}

// lotAndManufacturer checks what an administered dose needs (lot, expiration, manufacturer) and
// that the manufacturer is real and makes the vaccine.
func (r *run) lotAndManufacturer(o *orderGroup) {
	i := o.rxa
	admin := o.given && o.admin
	lot := r.rep1(i, 15)
	switch {
	case admin && len(lot) == 0:
		r.report(ruleLotMissing, i, r.loc(i, 15, 0, 0), args{})
	case len(lot) > 0 && isLotPlaceholder(lot):
		r.report(ruleLotPlaceholder, i, r.loc(i, 15, 0, 0), args{value: quote(lot)})
	}
	if admin && o.rxaDate != 0 {
		if t, ok := parseDTM(r.fcomp(i, 16, 1)); ok && t.digits >= 6 {
			exp := t.date
			if t.digits == 6 {
				// A month-only expiration date means the end of that month.
				exp = mkDate(exp.year(), exp.month(), daysIn(exp.year(), exp.month()))
			}
			if exp < o.rxaDate {
				r.report(ruleLotExpired, i, r.loc(i, 16, 0, 0), args{value: t.date.String(), detail: o.rxaDate.String()})
			}
		}
	}
	mf := r.rep1(i, 17)
	code := r.comp(mf, 1)
	if len(code) == 0 {
		if admin && len(mf) == 0 {
			r.report(ruleMVXMissing, i, r.loc(i, 17, 0, 0), args{})
		}
		return
	}
	if sys := r.comp(mf, 3); len(sys) > 0 && string(sys) != "MVX" {
		r.report(ruleMVXSystem, i, r.loc(i, 17, 0, 3), args{value: quote(sys)})
	}
	m := r.v.tab.manufacturer(code)
	loc := r.loc(i, 17, 0, 1)
	if m == nil {
		r.report(ruleMVXUnknown, i, loc, args{value: quote(code)})
		return
	}
	if admin && m.status == codes.StatusInactive && o.rxaDate != 0 && o.rxaDate >= m.updated {
		r.report(ruleMVXInactive, i, loc, args{value: m.mvx, detail: m.name})
	}
	v := o.cvx
	if v == nil || v.cvx == "998" || v.cvx == "999" || v.unspecified {
		return
	}
	switch {
	case o.ndcMVX != "" && o.ndcMVX != m.mvx:
		r.report(ruleProductMismatch, i, loc, args{value: "MVX " + m.mvx,
			detail: "of " + m.mvx + " with that NDC (the CDC links it to " + o.ndcMVX + ")"})
	case o.ndcMVX == "" && !r.v.tab.isProduct(v.cvx, m.mvx):
		r.report(ruleProductMismatch, i, loc, args{value: "MVX " + m.mvx,
			detail: "of " + m.mvx + " (" + m.name + ") with CVX " + v.cvx + " (" + v.name + ")"})
	}
}

func isLotPlaceholder(lot []byte) bool {
	var up [16]byte
	t := bytes.TrimSpace(lot)
	if len(t) > len(up) {
		return false
	}
	u := up[:0]
	for _, c := range t {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		u = append(u, c)
	}
	for _, p := range lotPlaceholders {
		if string(u) == p {
			return true
		}
	}
	return false
}

// route checks the RXR of the group: present for administered doses, route an NCIT code (or its
// HL7 table 0162 equivalent).
func (r *run) route(o *orderGroup) {
	if o.rxr < 0 {
		if o.given && o.admin && (o.cvx == nil || o.cvx.cvx != "998") {
			r.report(ruleRXRMissing, o.rxa, r.loc(o.rxa, 0, 0, 0), args{})
		}
		return
	}
	i := o.rxr
	rep := r.rep1(i, 1)
	code, system := r.comp(rep, 1), r.comp(rep, 3)
	if len(code) == 0 || localSystem(system) {
		return
	}
	ok := false
	switch string(system) {
	case "NCIT":
		ok = z22ValueSets[vsNCIT].has(code)
	case "HL70162":
		ok = routes162.has(code)
	default:
		ok = z22ValueSets[vsNCIT].has(code) || routes162.has(code)
	}
	if !ok {
		r.report(ruleRouteValue, i, r.loc(i, 1, 0, 1), args{value: quote(code)})
	}
}

// orc checks ORC-1 and the 9999 filler order number of records of doses not given.
func (r *run) orc(o *orderGroup) {
	i := o.orc
	if i < 0 {
		return
	}
	if v := r.fld(i, 1); len(v) > 0 && string(v) != "RE" {
		r.report(ruleORC1Value, i, r.loc(i, 1, 0, 0), args{value: quote(v)})
	}
	if o.status == "NA" || o.status == "RE" {
		if v := r.fcomp(i, 3, 1); len(v) > 0 && string(v) != "9999" {
			r.report(ruleORC3NotGiven, i, r.loc(i, 3, 0, 1), args{value: quote(v), detail: "= " + o.status})
		}
	}
	// The ordering facility's address and telephone numbers, and the ordering provider's.
	r.addresses(i, 22, false)
	r.phones(i, 14)
	r.phones(i, 23)
}

// The observations (OBX-3) the rules know: their value sets and value types.
const (
	loincFunding       = "64994-7"
	loincFundingSource = "30963-3"
	loincVaccineType   = "30956-7"
	loincVISDocument   = "69764-9"
	loincVISPublished  = "29768-9"
	loincVISPresented  = "29769-7"
)

type obsDef struct {
	loinc string
	coded bool  // CE/CWE value
	vs    vsRef // value set of OBX-5.1, 0: checked otherwise or not at all
	what  string
}

var observationDefs = []obsDef{
	{loincFunding, true, vsHL70064IZ, "funding program eligibility"},
	{loincFundingSource, true, vsPHVSImmunizationFundingSourceIIS, "funding source"},
	{loincVaccineType, true, 0, "VIS vaccine type"},
	{loincVISDocument, true, 0, "VIS document"},
	{loincVISPublished, false, 0, "VIS edition date"},
	{loincVISPresented, false, 0, "date VIS given"},
	{"59784-9", true, vsPHVSHistoryOfDiseaseAsEvidenceOfImmunityIIS, "disease with presumed immunity"},
	{"75505-8", true, vsPHVSSerologicalEvidenceOfImmunityIIS, "serological evidence of immunity"},
	{"30945-0", true, vsPHVSVaccinationContraindicationIIS, "contraindication"},
	{"31044-1", true, vsPHVSVaccinationReactionIIS, "reaction"},
	{"59785-6", true, vsPHVSVaccinationSpecialIndicationsIIS, "special indication"},
	{"59779-9", true, vsPHVSImmunizationScheduleIdentifierIIS, "immunization schedule"},
}

func obsOf(code []byte) *obsDef {
	for k := range observationDefs {
		if observationDefs[k].loinc == string(code) {
			return &observationDefs[k]
		}
	}
	return nil
}

// visSet collects the VIS observations sharing one OBX-4 sub-ID.
type visSet struct {
	sub                        []byte
	document, vaccineType      bool
	published, presented       date
	publishedSeg, presentedSeg int
}

// observations checks the OBX segments of the group: sequence, sub-ID, status, value types and
// value sets, the funding eligibility an administered dose needs, and the VIS it was given with.
func (r *run) observations(o *orderGroup) {
	var sets [8]visSet
	nsets := 0
	funding := false
	for k, i := range r.obx[o.obxFrom:o.obxTo] {
		if v := r.fld(i, 1); len(v) > 0 && string(v) != itoa(k+1) && string(v) != itoa(r.obxOrdinal(i)) {
			r.report(ruleSetIDSequence, i, r.loc(i, 1, 0, 0), args{value: quote(v),
				detail: "OBX segments count 1, 2, ... within the message or within each vaccination"})
		}
		sub := r.fld(i, 4)
		if len(sub) > 0 && (!isDigits(sub) || bytes.Count(sub, []byte("0")) == len(sub)) {
			r.report(ruleOBX4Value, i, r.loc(i, 4, 0, 0), args{value: quote(sub)})
		}
		if v := r.fld(i, 11); len(v) > 0 && string(v) != "F" {
			r.report(ruleOBX11Value, i, r.loc(i, 11, 0, 0), args{value: quote(v)})
		}
		vt := r.fld(i, 2)
		if string(vt) == "NM" && len(r.fld(i, 6)) == 0 {
			r.report(ruleOBX6Missing, i, r.loc(i, 6, 0, 0), args{})
		}
		code := r.fcomp(i, 3, 1)
		def := obsOf(code)
		if def == nil {
			continue
		}
		if def.loinc == loincFunding {
			funding = true
		}
		coded := string(vt) == "CE" || string(vt) == "CWE"
		dateType := string(vt) == "TS" || string(vt) == "DT" || string(vt) == "DTM"
		if len(vt) > 0 && (def.coded && !coded || !def.coded && !dateType) {
			want := "CE"
			if !def.coded {
				want = "TS or DT"
			}
			r.report(ruleOBX2Value, i, r.loc(i, 2, 0, 0), args{value: quote(vt),
				detail: def.loinc + " (" + def.what + ") takes " + want})
			continue
		}
		val := r.rep1(i, 5)
		var vc [3][]byte
		r.comps(val, vc[:])
		v1, sys := vc[0], vc[2]
		vloc := func() ack.Location { return r.loc(i, 5, 0, 1) } // made only for a finding
		if def.coded && len(v1) > 0 && !localSystem(sys) {
			switch {
			case def.vs > 0:
				if !z22ValueSets[def.vs].has(v1) && !(def.loinc == loincFunding && string(sys) != "HL70064" && len(sys) > 0) {
					r.report(ruleOBX5Value, i, vloc(), args{value: quote(v1), detail: vsText(def.vs) + " for " + def.loinc + " (" + def.what + ")"})
				}
			case def.loinc == loincVaccineType:
				if r.v.tab.vaccine(v1) == nil {
					r.report(ruleOBX5Value, i, vloc(), args{value: quote(v1), detail: "the CDC CVX table for 30956-7 (VIS vaccine type)"})
				}
			case def.loinc == loincVISDocument:
				if _, ok := r.v.codes.VIS(string(v1)); !ok {
					r.report(ruleVISDocumentUnknown, i, vloc(), args{value: quote(v1)})
				}
			}
		}
		// Collect the VIS observations by sub-ID.
		var s *visSet
		for x := range nsets {
			if bytes.Equal(sets[x].sub, sub) {
				s = &sets[x]
			}
		}
		if s == nil {
			if nsets == len(sets) {
				continue
			}
			sets[nsets] = visSet{sub: sub}
			s = &sets[nsets]
			nsets++
		}
		switch def.loinc {
		case loincVISDocument:
			s.document = true
		case loincVaccineType:
			s.vaccineType = true
		case loincVISPublished, loincVISPresented:
			raw := v1
			t, ok := parseDTM(raw)
			if !ok || t.digits < 8 {
				continue
			}
			if def.loinc == loincVISPublished {
				s.published, s.publishedSeg = t.date, i
			} else {
				s.presented, s.presentedSeg = t.date, i
			}
		}
	}
	admin := o.given && o.admin && o.cvx != nil && o.cvx.cvx != "998"
	if admin && !funding {
		r.report(ruleFundingMissing, o.rxa, r.loc(o.rxa, 0, 0, 0), args{})
	}
	complete := false
	for x := range nsets {
		s := &sets[x]
		if s.presented != 0 && (s.document || s.vaccineType && s.published != 0) {
			complete = true
		}
		switch {
		case s.published != 0 && s.presented != 0 && s.published > s.presented:
			r.report(ruleVISPublishedAfterPresented, s.publishedSeg, r.loc(s.publishedSeg, 5, 0, 0), args{
				value: s.published.String(), detail: "the date it was given (" + s.presented.String() + ")"})
		case s.published != 0 && s.presented == 0 && o.rxaDate != 0 && s.published > o.rxaDate:
			r.report(ruleVISPublishedAfterPresented, s.publishedSeg, r.loc(s.publishedSeg, 5, 0, 0), args{
				value: s.published.String(), detail: "the administration date (" + o.rxaDate.String() + ")"})
		}
		if s.presented != 0 && o.rxaDate != 0 && s.presented > o.rxaDate {
			r.report(ruleVISPresentedAfterAdmin, s.presentedSeg, r.loc(s.presentedSeg, 5, 0, 0), args{
				value: s.presented.String(), detail: o.rxaDate.String()})
		}
	}
	if admin && o.cvx.hasVIS && !complete {
		r.report(ruleVISMissing, o.rxa, r.loc(o.rxa, 0, 0, 0), args{value: o.cvx.cvx})
	}
}

// obxOrdinal is the 1-based position of OBX segment i among the message's OBX segments.
func (r *run) obxOrdinal(i int) int {
	return r.segs[i].seq
}
