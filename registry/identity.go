package registry

import (
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/vaxgate/vaxgate/ingest"
)

// Demographics are the identifying fields of a reported patient, as stored in patients and
// registry_patients, with their normalised forms for linking.
type Demographics struct {
	Name   ingest.Name
	Birth  *time.Time
	Sex    string
	Mother string // mother's maiden family name
	Zip    string

	MatchFamily, MatchGiven, MatchMother, MatchStreet string

	// birthDay is *Birth as BlockOf keys it (YYYY-MM-DD), made once by DemographicsOf for the
	// Birth it points to (birthDayOf): BlockOf runs several times for each record of a batch.
	// Demographics made otherwise (read from the database) have none, and BlockOf formats it.
	birthDay   string
	birthDayOf *time.Time
}

// DemographicsOf reads a reported patient's identifying fields and normalises them.
func DemographicsOf(pt *ingest.Patient) Demographics {
	name := pt.LegalName()
	addr := primaryAddress(pt.Addresses)
	birth := ParseDate(pt.BirthDate)
	day := ""
	if birth != nil {
		day = dateOnly(*birth)
	}
	return Demographics{
		birthDay:    day,
		birthDayOf:  birth,
		Name:        name,
		Birth:       birth,
		Sex:         pt.Sex,
		Mother:      pt.MotherMaiden.Family,
		Zip:         addr.Zip,
		MatchFamily: MatchName(name.Family),
		MatchGiven:  MatchName(name.Given),
		MatchMother: MatchName(pt.MotherMaiden.Family),
		MatchStreet: MatchStreet(addr.Street),
	}
}

// primaryAddress is where the patient lives: the first legal (L) or home (H) address, else the
// first one.
func primaryAddress(as []ingest.Address) ingest.Address {
	for _, a := range as {
		if a.Type == "L" || a.Type == "H" {
			return a
		}
	}
	if len(as) > 0 {
		return as[0]
	}
	return ingest.Address{}
}

// MatchName normalises a name for deterministic comparison: letters only, lower case, without
// diacritics, so that "Müller", "MULLER" and "Mul-ler" compare equal (EHRs without UTF-8 drop the
// umlaut; others add spaces, hyphens and apostrophes inconsistently).
func MatchName(s string) string {
	if isASCII(s) {
		// The common case: NFD leaves ASCII as it is, and its letters are A-Z and a-z.
		if lowerLetters(s) {
			return s
		}
		var buf [64]byte
		return string(appendMatchASCII(buf[:0], s))
	}
	// Latin letters with diacritics (names from Europe and the Americas): each character is
	// normalised on its own, as the table below has it (see latinMatch).
	var buf [64]byte
	out := buf[:0]
	for _, r := range s {
		if r >= rune(len(latinMatch)) {
			return matchNameNFD(s)
		}
		out = append(out, latinMatch[r]...)
	}
	return string(out)
}

// latinMatch is MatchName of each character below U+0250 (ASCII, Latin-1, Latin Extended-A and
// -B), computed by matchNameNFD. A string of these characters normalises character by character:
// none of them is a combining mark, each decomposes into letters and nonspacing marks (which
// MatchName drops), so the canonical reordering of marks that NFD does across characters cannot
// change what is kept.
var latinMatch = func() (t [0x250]string) {
	for r := range t {
		t[r] = matchNameNFD(string(rune(r)))
	}
	return t
}()

// matchNameNFD is MatchName of any string, through Unicode normalisation.
func matchNameNFD(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'ß':
			b.WriteString("ss")
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lowerLetters reports whether s (ASCII) is what MatchName makes of it: lower-case letters only.
func lowerLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// appendMatchASCII appends MatchName(s) of an ASCII s: its letters, in lower case.
func appendMatchASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z':
			dst = append(dst, c)
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		}
	}
	return dst
}

// streetWords unifies the usual street-type abbreviations.
var streetWords = map[string]string{
	"street": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "lane": "ln",
	"boulevard": "blvd", "court": "ct", "place": "pl", "terrace": "ter", "circle": "cir",
	"highway": "hwy", "parkway": "pkwy", "square": "sq", "apartment": "apt", "suite": "ste",
	"north": "n", "south": "s", "east": "e", "west": "w",
}

// MatchStreet normalises a street line: words of letters and digits, lower case, without
// diacritics, abbreviations unified ("12 Elm Street" = "12 ELM ST.").
func MatchStreet(s string) string {
	if isASCII(s) {
		return matchStreetASCII(s)
	}
	return matchStreetNFD(s)
}

// matchStreetNFD is MatchStreet of any string, through Unicode normalisation.
func matchStreetNFD(s string) string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() == 0 {
			return
		}
		word := w.String()
		if a, ok := streetWords[word]; ok {
			word = a
		}
		words = append(words, word)
		w.Reset()
	}
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			w.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return strings.Join(words, " ")
}

func zip5(z string) string {
	if n := leadingDigits(z); n >= 5 || n == len(z) {
		return z[:min(n, 5)] // the common case: digits first, nothing to copy
	}
	return zip5Any(z)
}

// zip5Any is zip5 of any string: its first five digits.
func zip5Any(z string) string {
	var b strings.Builder
	for _, r := range z {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
			if b.Len() == 5 {
				break
			}
		}
	}
	return b.String()
}

// matchStreetASCII is MatchStreet of an ASCII s (NFD leaves it as it is; its letters and digits are
// A-Z, a-z and 0-9), built in one buffer.
func matchStreetASCII(s string) string {
	var buf, wbuf [96]byte
	out, w := buf[:0], wbuf[:0]
	flush := func() {
		if len(w) == 0 {
			return
		}
		if len(out) > 0 {
			out = append(out, ' ')
		}
		if a, ok := streetWords[string(w)]; ok {
			out = append(out, a...)
		} else {
			out = append(out, w...)
		}
		w = w[:0]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			w = append(w, c)
		case c >= 'A' && c <= 'Z':
			w = append(w, c+'a'-'A')
		default:
			flush()
		}
	}
	flush()
	return string(out)
}

// leadingDigits counts the ASCII digits s starts with.
func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// definiteSex is M or F; anything else (U, O, empty) says nothing for linking.
func definiteSex(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "M" || s == "F" {
		return s
	}
	return ""
}

// LinkLockClass is the first key of the transaction-scoped advisory locks that serialise linking:
// a constant of its own, so that they never collide with other advisory locks (tern's migration
// lock uses the one-key form).
const LinkLockClass = 0x76617867 // "vaxg"

// LinkKey is the advisory lock key of the linking block a record's patient falls in (environment,
// birth date, normalised family name): every registry patient it could be linked to is in that
// block, so two writers holding the lock cannot both create the same person. ok is false when the
// patient cannot be linked at all (no birth date or family name).
func LinkKey(rec *ingest.Record) (key int32, ok bool) {
	if rec.VXU == nil || rec.Sender == nil {
		return 0, false
	}
	pt := &rec.VXU.Patient
	family := pt.LegalName().Family
	// FNV-1a of env|YYYYMMDD|family, hashed as it is built: no string is made (this runs for every
	// record of every batch).
	var buf [96]byte
	b := append(buf[:0], rec.Env...)
	b = append(b, '|')
	if s := strings.TrimSpace(pt.BirthDate); len(s) >= 8 {
		if _, _, _, valid, ok := eightDigitDate(s); ok {
			// The date as it formats: its eight digits (no time.Time to make).
			if !valid {
				return 0, false
			}
			b = append(b, s[:8]...)
			return linkHash(b, family)
		}
	}
	birth := ParseDate(pt.BirthDate)
	if birth == nil {
		return 0, false
	}
	if y := birth.Year(); y >= 0 && y <= 9999 {
		b = appendDigits(b, y, 4)
		b = appendDigits(b, int(birth.Month()), 2)
		b = appendDigits(b, birth.Day(), 2)
	} else {
		b = birth.AppendFormat(b, "20060102")
	}
	return linkHash(b, family)
}

// linkHash completes LinkKey: b holds env|YYYYMMDD.
func linkHash(b []byte, family string) (int32, bool) {
	b = append(b, '|')
	n := len(b)
	if isASCII(family) {
		b = appendMatchASCII(b, family)
	} else {
		b = append(b, MatchName(family)...)
	}
	if len(b) == n {
		return 0, false
	}
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return int32(h), true
}

// appendDigits appends n (>= 0) in decimal, zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	var d [20]byte
	i := len(d)
	for n > 0 || i > len(d)-width {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[i:]...)
}

// --- linking ---

// linkEvidence says, for one candidate registry patient, which identifying fields agreed,
// conflicted or differed. It names fields, never their values: it is stored for review.
type linkEvidence struct {
	RegistryPatientID int64    `json:"registry_patient_id"`
	Match             string   `json:"match"` // "strong" or "weak"
	Agree             []string `json:"agree,omitempty"`
	Conflict          []string `json:"conflict,omitempty"`
	Differ            []string `json:"differ,omitempty"`
}

type linkResult struct {
	regID      int64          // the registry patient to link to; 0: create one
	candidates []linkEvidence // when not linked: the registry patients it may be (for review)
}

func (l linkResult) candidateIDs() []int64 {
	ids := make([]int64, len(l.candidates))
	for i, c := range l.candidates {
		ids[i] = c.RegistryPatientID
	}
	return ids
}

// compareDemographics applies the deterministic rules to a reported patient (in) and one sender
// patient already linked to a registry patient (c), both in the same block (environment, birth
// date, normalised family name) and with the same normalised given name:
//   - conflicts (the same person is unlikely): both sexes definite and different; both mothers'
//     maiden names given and different;
//   - corroboration: mothers' maiden names equal; the same street line (and ZIP, when both have
//     one);
//   - strong: no conflict and at least one corroboration. Name and birth date alone are not
//     enough: in a state's population several children share them.
func compareDemographics(in, c *Demographics) linkEvidence {
	var e linkEvidence
	if s1, s2 := definiteSex(in.Sex), definiteSex(c.Sex); s1 != "" && s2 != "" && s1 != s2 {
		e.Conflict = append(e.Conflict, "sex")
	}
	if in.MatchMother != "" && c.MatchMother != "" {
		if in.MatchMother == c.MatchMother {
			e.Agree = append(e.Agree, "mother_maiden_name")
		} else {
			e.Conflict = append(e.Conflict, "mother_maiden_name")
		}
	}
	if in.MatchStreet != "" && c.MatchStreet != "" {
		z1, z2 := zip5(in.Zip), zip5(c.Zip)
		if in.MatchStreet == c.MatchStreet && (z1 == "" || z2 == "" || z1 == z2) {
			e.Agree = append(e.Agree, "address")
		} else {
			// Families move: a different address is no conflict, but it corroborates nothing.
			e.Differ = append(e.Differ, "address")
		}
	}
	e.Match = "weak"
	if len(e.Conflict) == 0 && len(e.Agree) > 0 {
		e.Match = "strong"
	}
	return e
}

// link finds the registry patient a newly seen sender patient is: exactly one candidate, strongly
// matched (see compareDemographics), is linked; none means a new registry patient; anything else
// (several candidates, or only weak ones) also means a new registry patient, and the candidates
// are returned for review rather than merged: a wrong merge shows a child another child's doses.
// The candidates come from the batch's view; the caller holds the block's advisory lock
// (store's lockLinkKeys, by LinkKey).
func link(view *View, env string, d *Demographics) linkResult {
	cands := view.candidates(env, d)
	if len(cands) == 0 {
		return linkResult{} // most new patients: no map for the evidence
	}
	best := map[int64]linkEvidence{}
	var order []int64
	for _, c := range cands {
		e := compareDemographics(d, &c.D)
		e.RegistryPatientID = c.RegID
		prev, seen := best[c.RegID]
		if !seen {
			order = append(order, c.RegID)
		}
		// A registry patient matches as well as the best of its sender patients.
		if !seen || (prev.Match == "weak" && e.Match == "strong") {
			best[c.RegID] = e
		}
	}
	if len(order) == 1 && best[order[0]].Match == "strong" {
		return linkResult{regID: order[0]}
	}
	var res linkResult
	for _, id := range order {
		res.candidates = append(res.candidates, best[id])
	}
	return res
}
