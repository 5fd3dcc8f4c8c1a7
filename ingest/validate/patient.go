package validate

import (
	"bytes"

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
	s := r.m.Segment(i)
	if v := s.Field(1).Raw(); len(v) > 0 && string(v) != "1" {
		r.report(ruleSetIDSequence, i, r.loc(i, 1, 0, 0), args{value: quote(v), detail: "PID-1 is always 1"})
	}
	if t, ok := parseDTM(s.Field(7).Component(1).Raw()); ok && t.digits >= 8 {
		r.birth = t.date
		switch {
		case t.date > r.today:
			r.report(ruleBirthFuture, i, r.loc(i, 7, 0, 0), args{value: t.date.String()})
		case t.date < addYears(r.today, -125):
			r.report(ruleBirthImplausible, i, r.loc(i, 7, 0, 0), args{value: t.date.String()})
		}
	}
	if t, ok := parseDTM(s.Field(29).Component(1).Raw()); ok && t.digits >= 8 {
		r.death = t.date
		if string(s.Field(30).Raw()) != "Y" {
			r.report(rulePID29NoIndicator, i, r.loc(i, 30, 0, 0), args{})
		}
		if r.birth != 0 && t.date < r.birth {
			r.report(ruleDeathBeforeBirth, i, r.loc(i, 29, 0, 0), args{value: t.date.String(), detail: r.birth.String()})
		}
	}
	if !s.Field(25).IsEmpty() && string(s.Field(24).Raw()) != "Y" {
		r.report(ruleConditionalNotAllowed, i, r.loc(i, 25, 0, 0), args{name: "Birth Order", detail: "PID-24 (Multiple Birth Indicator) is not Y"})
	}
	r.names(i, 5, true)
	r.names(i, 6, false)
	r.addresses(i, 11)
	r.phones(i, 13)
}

func (r *run) pd1Segment(i int) {
	s := r.m.Segment(i)
	for _, c := range [...]struct {
		field, cond    int
		name, condName string
	}{
		{13, 12, "Protection Indicator Effective Date", "PD1-12 (Protection Indicator)"},
		{17, 16, "Immunization Registry Status Effective Date", "PD1-16 (Immunization Registry Status)"},
		{18, 11, "Publicity Code Effective Date", "PD1-11 (Publicity Code)"},
	} {
		if !s.Field(c.field).IsEmpty() && s.Field(c.cond).IsEmpty() {
			r.report(ruleConditionalNotAllowed, i, r.loc(i, c.field, 0, 0), args{name: c.name, detail: c.condName + " is empty"})
		}
	}
}

func (r *run) nk1Segment(i, n int) {
	s := r.m.Segment(i)
	if v := s.Field(1).Raw(); len(v) > 0 && string(v) != itoa(n) {
		r.report(ruleSetIDSequence, i, r.loc(i, 1, 0, 0), args{value: quote(v), detail: "NK1 segments count 1, 2, ... in order; this one is " + itoa(n)})
	}
	r.names(i, 2, true)
	r.addresses(i, 4)
	r.phones(i, 5)
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
	f := r.m.Segment(i).Field(n)
	if f.IsEmpty() || f.IsNull() {
		return
	}
	var buf [128]byte
	for k := 1; k <= min(f.NumReps(), maxReps); k++ {
		rep := f.Rep(k)
		for comp := 1; comp <= 2; comp++ {
			var v []byte
			if comp == 1 {
				sc := rep.Component(1).Sub(1)
				if sc.IsEmpty() || sc.IsNull() {
					continue
				}
				v = sc.AppendDecoded(buf[:0])
			} else {
				c := rep.Component(2)
				if c.IsEmpty() || c.IsNull() {
					continue
				}
				v = c.AppendDecoded(buf[:0])
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

// addresses checks the US addresses of an XAD field: complete, a USPS state, a ZIP code. An
// address of another country is left alone; one without country is taken as US.
func (r *run) addresses(i, n int) {
	f := r.m.Segment(i).Field(n)
	if f.IsEmpty() || f.IsNull() {
		return
	}
	for k := 1; k <= min(f.NumReps(), maxReps); k++ {
		rep := f.Rep(k)
		if blank(rep.Raw(), r.d) {
			continue
		}
		country := rep.Component(6).Raw()
		if len(country) > 0 && string(country) != "USA" && string(country) != "US" && string(country) != "840" {
			continue
		}
		street := rep.Component(1).Sub(1).Raw()
		city, state, zip := rep.Component(3).Raw(), rep.Component(4).Raw(), rep.Component(5).Raw()
		if len(street) == 0 || len(city) == 0 || len(state) == 0 || len(zip) == 0 {
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
		if len(state) > 0 && !usStates.has(state) {
			r.report(ruleAddressState, i, r.loc(i, n, k, 4), args{value: quote(state)})
		}
		if len(zip) > 0 && !validZip(zip) {
			r.report(ruleAddressZip, i, r.loc(i, n, k, 5), args{value: quote(zip)})
		}
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
// numbers have a US area code and a 7-digit local number.
func (r *run) phones(i, n int) {
	f := r.m.Segment(i).Field(n)
	if f.IsEmpty() || f.IsNull() {
		return
	}
	for k := 1; k <= min(f.NumReps(), maxReps); k++ {
		rep := f.Rep(k)
		use, equip := rep.Component(2).Raw(), rep.Component(3).Raw()
		if string(use) == "NET" || string(equip) == "Internet" || string(equip) == "X.400" {
			if mail := rep.Component(4).Raw(); len(mail) > 0 && !validEmail(mail) {
				r.report(ruleEmailInvalid, i, r.loc(i, n, k, 4), args{value: quote(mail)})
			}
			continue
		}
		area, local := rep.Component(6).Raw(), rep.Component(7).Raw()
		if len(area) == 0 && len(local) == 0 {
			continue
		}
		if !validArea(area) || !validLocal(local) {
			r.report(rulePhoneInvalid, i, r.loc(i, n, k, 7), args{value: quote(rep.Raw())})
		}
	}
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
