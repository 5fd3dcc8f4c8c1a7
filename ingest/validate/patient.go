package validate

import (
	"bytes"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// patient checks what PID, PD1 and NK1 say beyond their structure: dates that contradict each
// other or the calendar, conditional fields, set IDs, and the plausibility of names, addresses
// and telephone numbers.
func (r *run) patient() {
	nk1 := 0
	for i := range r.segs {
		switch r.segs[i].def {
		case segPID:
			if i == r.pid {
				r.pidSegment(i)
			}
		case segPD1:
			r.pd1Segment(i)
		case segNK1:
			nk1++
			r.nk1Segment(i, nk1)
		}
	}
}

func (r *run) pidSegment(i int) {
	if v := r.fld(i, 1); len(v) > 0 && string(v) != "1" {
		r.report(ruleSetIDSequence, i, r.loc(i, 1, 0, 0), args{value: quote(v), detail: "PID-1 is always 1"})
	}
	if t, ok := parseDTM(r.fcomp(i, 7, 1)); ok && t.digits >= 8 {
		r.birth = t.date
		switch {
		case t.date > r.today:
			r.report(ruleBirthFuture, i, r.loc(i, 7, 0, 0), args{value: t.date.String()})
		case t.date < addYears(r.today, -125):
			r.report(ruleBirthImplausible, i, r.loc(i, 7, 0, 0), args{value: t.date.String()})
		}
	}
	if t, ok := parseDTM(r.fcomp(i, 29, 1)); ok && t.digits >= 8 {
		r.death = t.date
		if string(r.fld(i, 30)) != "Y" {
			r.report(rulePID29NoIndicator, i, r.loc(i, 30, 0, 0), args{})
		}
		if r.birth != 0 && t.date < r.birth {
			r.report(ruleDeathBeforeBirth, i, r.loc(i, 29, 0, 0), args{value: t.date.String(), detail: r.birth.String()})
		}
	}
	if len(r.fld(i, 25)) > 0 && string(r.fld(i, 24)) != "Y" {
		r.report(ruleConditionalNotAllowed, i, r.loc(i, 25, 0, 0), args{name: "Birth Order", detail: "PID-24 (Multiple Birth Indicator) is not Y"})
	}
	r.names(i, 5, true)
	r.names(i, 6, false)
	r.addresses(i, 11, true)
	r.phones(i, 13)
	r.phones(i, 14)
}

func (r *run) pd1Segment(i int) {
	for _, c := range [...]struct {
		field, cond    int
		name, condName string
	}{
		{13, 12, "Protection Indicator Effective Date", "PD1-12 (Protection Indicator)"},
		{17, 16, "Immunization Registry Status Effective Date", "PD1-16 (Immunization Registry Status)"},
		{18, 11, "Publicity Code Effective Date", "PD1-11 (Publicity Code)"},
	} {
		if len(r.fld(i, c.field)) > 0 && len(r.fld(i, c.cond)) == 0 {
			r.report(ruleConditionalNotAllowed, i, r.loc(i, c.field, 0, 0), args{name: c.name, detail: c.condName + " is empty"})
		}
	}
}

func (r *run) nk1Segment(i, n int) {
	if v := r.fld(i, 1); len(v) > 0 && string(v) != itoa(n) {
		r.report(ruleSetIDSequence, i, r.loc(i, 1, 0, 0), args{value: quote(v), detail: "NK1 segments count 1, 2, ... in order; this one is " + itoa(n)})
	}
	r.names(i, 2, true)
	r.addresses(i, 4, true)
	r.phones(i, 5)
	r.phones(i, 6)
}

// placeholderNames are what systems write when they do not know a name. Compared in upper case.
var placeholderNames = [][]byte{
	[]byte("BABY"), []byte("BABYBOY"), []byte("BABY BOY"), []byte("BABYGIRL"), []byte("BABY GIRL"),
	[]byte("BOY"), []byte("GIRL"), []byte("INFANT"), []byte("NEWBORN"), []byte("TWIN"),
	[]byte("UNKNOWN"), []byte("UNK"), []byte("UNNAMED"), []byte("NONAME"), []byte("NO NAME"),
	[]byte("NONE"), []byte("N/A"), []byte("TEST"), []byte("TESTPATIENT"),
	[]byte("TEST PATIENT"), []byte("PATIENT"), []byte("XXX"), []byte("ZZZ"),
	[]byte("NOTGIVEN"), []byte("NOT GIVEN"),
}

// names checks the family name (component 1, its first subcomponent) and given name (component 2)
// of every repetition of an XPN field. Family names are checked for placeholders only in the
// patient's and next of kin's names: a mother's maiden name may well be Baby.
func (r *run) names(i, n int, placeholders bool) {
	f := r.fld(i, n)
	if len(f) == 0 || isNullBytes(f) {
		return
	}
	var buf [128]byte
	rest := f
	for k := 1; rest != nil; k++ {
		if k > maxReps {
			break
		}
		var rep []byte
		rep, rest = cut(rest, r.d.Repetition)
		var nc [2][]byte // family name, given name
		r.comps(rep, nc[:])
		for comp := 1; comp <= 2; comp++ {
			v := nc[1]
			if comp == 1 {
				v = r.sub(nc[0], 1)
			}
			if len(v) == 0 || isNullBytes(v) {
				continue
			}
			if !plainText(v, r.d.Escape) {
				// Escapes or bytes of the character set: as hl7 decodes them.
				c := r.m.Segment(i).Field(n).Rep(k).Component(comp)
				if comp == 1 {
					v = c.Sub(1).AppendDecoded(buf[:0])
				} else {
					v = c.AppendDecoded(buf[:0])
				}
			}
			name := "family name"
			if comp == 2 {
				name = "given name"
			}
			switch {
			case (placeholders || comp == 2) && isPlaceholderName(v):
				r.report(ruleNamePlaceholder, i, r.loc(i, n, k, comp), args{name: name, value: "'" + string(v) + "'"})
			case !nameCharacters(v):
				r.report(ruleNameCharacters, i, r.loc(i, n, k, comp), args{name: name, detail: badNameCharacters(v)})
			}
		}
	}
}

func isPlaceholderName(v []byte) bool {
	var up [32]byte
	if len(v) > len(up) {
		return false
	}
	// A name that starts with a character no placeholder starts with (nearly every name) is
	// none: an ASCII byte other than white space is where bytes.TrimSpace stops.
	if len(v) > 0 && v[0] < 0x80 && !asciiSpace[v[0]] && !placeholderFirst[upperASCII(v[0])] {
		return false
	}
	u := up[:0]
	for _, c := range bytes.TrimSpace(v) {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		u = append(u, c)
	}
	for _, p := range placeholderNames {
		if bytes.Equal(u, p) {
			return true
		}
	}
	return false
}

// placeholderFirst says which bytes placeholderNames start with; asciiSpace which ASCII bytes
// bytes.TrimSpace trims.
var placeholderFirst, asciiSpace = func() (first, space [256]bool) {
	for _, p := range placeholderNames {
		first[p[0]] = true
	}
	for _, c := range []byte("\t\n\v\f\r ") {
		space[c] = true
	}
	return first, space
}()

func upperASCII(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// nameCharacters reports whether v has only what names have: letters (any script), spaces,
// hyphens, apostrophes, periods and commas.
func nameCharacters(v []byte) bool {
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= 0x80:
		case c == ' ', c == '-', c == '\'', c == '.', c == ',':
		default:
			return false
		}
	}
	return true
}

// badNameCharacters lists the characters of v that names do not have, quoted, at most five.
func badNameCharacters(v []byte) string {
	out := ""
	n := 0
	for _, c := range v {
		if nameCharacters([]byte{c}) || n == 5 {
			continue
		}
		if out != "" {
			out += " "
		}
		if c < ' ' || c == 0x7f {
			c = '?'
		}
		out += "'" + string(rune(c)) + "'"
		n++
	}
	return out
}

// usStates are the USPS codes of the states, DC, territories and military addresses.
var usStates = valueSet{id: "USPS", name: "USPS state codes", codes: []string{
	"AA", "AE", "AK", "AL", "AP", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "FM", "GA",
	"GU", "HI", "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MH", "MI", "MN", "MO",
	"MP", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR",
	"PW", "RI", "SC", "SD", "TN", "TX", "UM", "UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
}}

// addresses checks the US addresses of an XAD field: complete, a USPS state, a ZIP code of that
// state, a county of that state. An address of another country is left alone; one without
// country is taken as US. complete is false for addresses the profile leaves optional (ORC-22),
// which are checked only for what they give.
func (r *run) addresses(i, n int, complete bool) {
	f := r.fld(i, n)
	if len(f) == 0 || isNullBytes(f) {
		return
	}
	what := ruleMemoAddress
	if complete {
		what = ruleMemoAddressComplete
	}
	if r.ruleClean(what, f) {
		return // the same address was found clean in this message (the next of kin's is often the patient's)
	}
	defer r.rememberClean(what, i, n, r.reports)
	rest := f
	for k := 1; rest != nil; k++ {
		if k > maxReps {
			break
		}
		var rep []byte
		rep, rest = cut(rest, r.d.Repetition)
		if blank(rep, r.d) {
			continue
		}
		var c [9][]byte
		r.comps(rep, c[:])
		country := c[5]
		if !usCountry(country) {
			continue
		}
		street := r.sub(c[0], 1)
		city, state, zip := c[2], c[3], c[4]
		if complete && (len(street) == 0 || len(city) == 0 || len(state) == 0 || len(zip) == 0) {
			missing := ""
			for _, p := range [...]struct {
				v    []byte
				name string
			}{{street, "street"}, {city, "city"}, {state, "state"}, {zip, "ZIP code"}} {
				if len(p.v) == 0 {
					if missing != "" {
						missing += ", "
					}
					missing += p.name
				}
			}
			r.report(ruleAddressIncomplete, i, r.loc(i, n, k, 0), args{detail: missing})
		}
		validState := len(state) > 0 && usStates.has(state)
		if len(state) > 0 && !validState {
			r.report(ruleAddressState, i, r.loc(i, n, k, 4), args{value: quote(state)})
		}
		switch {
		case len(zip) == 0:
		case !validZip(zip):
			if complete {
				r.report(ruleAddressZip, i, r.loc(i, n, k, 5), args{value: quote(zip)})
			} else {
				r.report(ruleFacilityZip, i, r.loc(i, n, k, 5), args{value: quote(zip)})
			}
		case validState:
			r.zipState(i, r.loc(i, n, k, 5), zip, state)
		}
		if county := c[8]; len(county) > 0 && !isNullBytes(county) {
			r.county(i, r.loc(i, n, k, 9), county, state, validState)
		}
	}
}

// facilityAddress checks the address of the administering facility in RXA-11 (LA2: street in
// component 9, state 12, ZIP 13, country 14).
func (r *run) facilityAddress(i int) {
	rep := r.rep1(i, 11)
	zip := r.comp(rep, 13)
	if len(zip) == 0 || isNullBytes(zip) || !usCountry(r.comp(rep, 14)) {
		return
	}
	loc := r.loc(i, 11, 0, 13)
	if !validZip(zip) {
		r.report(ruleFacilityZip, i, loc, args{value: quote(zip)})
		return
	}
	if st := r.comp(rep, 12); len(st) > 0 && usStates.has(st) {
		r.zipState(i, loc, zip, st)
	}
}

func usCountry(c []byte) bool {
	return len(c) == 0 || string(c) == "USA" || string(c) == "US" || string(c) == "840"
}

// zipState reports a valid ZIP code whose prefix belongs to another state than st.
func (r *run) zipState(i int, loc ack.Location, zip, st []byte) {
	states := zipStates(zip)
	if states == "" || hasState(states, st) {
		return
	}
	detail := states
	if len(states) > 2 {
		detail = "one of " + states
	}
	r.report(ruleZipState, i, loc, args{value: quote(zip), detail: detail + ", not " + string(st)})
}

// county checks XAD-9: a FIPS 6-4 code, 3 digits (county within the state) or 5 (state + county),
// whose state part is the address's state.
func (r *run) county(i int, loc ack.Location, county, st []byte, validState bool) {
	switch {
	case len(county) == 3 && isDigits(county):
	case len(county) == 5 && isDigits(county):
		fst, ok := fipsStates[string(county[:2])]
		if !ok {
			r.report(ruleCountyInvalid, i, loc, args{value: quote(county)})
		} else if validState && fst != string(st) {
			r.report(ruleCountyState, i, loc, args{value: quote(county), detail: fst + ", not " + string(st)})
		}
	default:
		r.report(ruleCountyInvalid, i, loc, args{value: quote(county)})
	}
}

func validZip(z []byte) bool {
	switch len(z) {
	case 5:
		return isDigits(z)
	case 9:
		return isDigits(z)
	case 10:
		return isDigits(z[:5]) && z[5] == '-' && isDigits(z[6:])
	}
	return false
}

// phones checks the XTN repetitions of a field: e-mail addresses look like one, telephone
// numbers have a US area code and a 7-digit local number where Z22 puts them, use and equipment
// agree, extensions are digits.
func (r *run) phones(i, n int) {
	f := r.fld(i, n)
	if len(f) == 0 || isNullBytes(f) {
		return
	}
	if r.ruleClean(ruleMemoPhone, f) {
		return // as for addresses
	}
	defer r.rememberClean(ruleMemoPhone, i, n, r.reports)
	rest := f
	for k := 1; rest != nil; k++ {
		if k > maxReps {
			break
		}
		var rep []byte
		rep, rest = cut(rest, r.d.Repetition)
		var c [8][]byte
		r.comps(rep, c[:])
		use, equip := c[1], c[2]
		net := string(use) == "NET"
		internet := string(equip) == "Internet" || string(equip) == "X.400"
		if net != internet && len(use) > 0 && len(equip) > 0 {
			r.report(rulePhoneUseEquipment, i, r.loc(i, n, k, 3), args{value: quote(use), detail: quote(equip)})
		}
		if net || internet {
			if mail := c[3]; len(mail) > 0 && !validEmail(mail) {
				r.report(ruleEmailInvalid, i, r.loc(i, n, k, 4), args{value: quote(mail)})
			}
			continue
		}
		area, local := c[5], c[6]
		if len(area) == 0 && len(local) == 0 {
			if old := c[0]; digitCount(old) >= 7 {
				r.report(rulePhoneMisplaced, i, r.loc(i, n, k, 1), args{value: quote(old),
					detail: "the number is only in XTN-1, which Z22 does not use"})
			}
			continue
		}
		if len(area) == 0 && digitCount(local) == 10 {
			r.report(rulePhoneMisplaced, i, r.loc(i, n, k, 7), args{value: quote(local),
				detail: "XTN-7 holds the area code too"})
			continue
		}
		if !validArea(area) || !validLocal(local) {
			r.report(rulePhoneInvalid, i, r.loc(i, n, k, 7), args{value: quote(rep)})
			continue
		}
		if cc := c[4]; len(cc) > 0 && string(cc) != "1" && string(cc) != "+1" {
			r.report(rulePhoneExtension, i, r.loc(i, n, k, 5), args{value: quote(cc),
				detail: "a number with a US area code and a 7-digit local number has country code 1 (or none)"})
		}
		if ext := c[7]; len(ext) > 0 && (len(ext) > 5 || !isDigits(ext)) {
			r.report(rulePhoneExtension, i, r.loc(i, n, k, 8), args{value: quote(ext),
				detail: "an extension (XTN-8) is 1 to 5 digits"})
		}
	}
}

// digitCount counts the digits of b.
func digitCount(b []byte) int {
	n := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			n++
		}
	}
	return n
}

// validArea: three digits, the first 2-9 (NANP).
func validArea(a []byte) bool { return len(a) == 3 && isDigits(a) && a[0] >= '2' }

// validLocal: seven digits, the first 2-9 (NANP); a hyphen after the exchange is tolerated.
func validLocal(l []byte) bool {
	if len(l) == 8 && l[3] == '-' {
		return isDigits(l[:3]) && isDigits(l[4:]) && l[0] >= '2'
	}
	return len(l) == 7 && isDigits(l) && l[0] >= '2'
}

func validEmail(m []byte) bool {
	at := bytes.IndexByte(m, '@')
	if at <= 0 || bytes.IndexByte(m[at+1:], '@') >= 0 || bytes.ContainsAny(m, " ,;<>") {
		return false
	}
	dot := bytes.LastIndexByte(m[at+1:], '.')
	return dot > 0 && dot < len(m[at+1:])-1
}

// blank reports whether a raw value holds nothing but delimiters (RPMS sends "^^^^^^").
func blank(v []byte, d hl7.Delimiters) bool {
	for _, c := range v {
		if c != d.Component && c != d.Subcomponent && c != ' ' {
			return false
		}
	}
	return true
}

// The checks of addresses and telephone numbers depend on the field's bytes alone (and, for
// addresses, on whether the address must be complete): a field that equals one found clean in the
// same message is clean too, and is not checked again. The next of kin's address and telephone
// number are often the patient's.
const (
	ruleMemoAddress uint8 = iota
	ruleMemoAddressComplete
	ruleMemoPhone
)

// ruleMemoEntry is a field found clean by the rule of kind what.
type ruleMemoEntry struct {
	what uint8
	sp   span
}

// ruleClean reports whether a field with bytes f was found clean by the rule of kind what.
func (r *run) ruleClean(what uint8, f []byte) bool {
	for _, e := range r.ruleMemo {
		if e.what == what && bytes.Equal(r.data[e.sp.start:e.sp.end], f) {
			return true
		}
	}
	return false
}

// rememberClean remembers field n of segment i as clean for the rule of kind what when nothing
// was reported since r.reports was before (every problem counts, whatever its severity).
func (r *run) rememberClean(what uint8, i, n, before int) {
	if r.reports != before || len(r.ruleMemo) >= 8 {
		return
	}
	info := &r.segs[i]
	r.ruleMemo = append(r.ruleMemo, ruleMemoEntry{what, r.fields[int(info.f0)+n-1]})
}
