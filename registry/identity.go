package registry

import (
	"hash/fnv"
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
}

// DemographicsOf reads a reported patient's identifying fields and normalises them.
func DemographicsOf(pt *ingest.Patient) Demographics {
	name := pt.LegalName()
	addr := primaryAddress(pt.Addresses)
	return Demographics{
		Name:        name,
		Birth:       ParseDate(pt.BirthDate),
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
	birth := ParseDate(pt.BirthDate)
	family := MatchName(pt.LegalName().Family)
	if birth == nil || family == "" {
		return 0, false
	}
	h := fnv.New32a()
	h.Write([]byte(rec.Env + "|" + birth.Format("20060102") + "|" + family))
	return int32(h.Sum32()), true
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
	best := map[int64]linkEvidence{}
	var order []int64
	for _, c := range view.candidates(env, d) {
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
