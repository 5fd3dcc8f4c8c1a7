package validate

import (
	"strings"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// codeTables are the facts of a codes.Set the rules need, indexed once by New so that checking a
// message is a few map lookups with no allocation (codes.Set lookups take strings and copy
// slices; these take the message's bytes).
type codeTables struct {
	vaccines map[string]*vaccineInfo // by canonical CVX
	mvx      map[string]*mvxInfo     // by upper-case MVX
	products map[string]struct{}     // "CVX|MVX" of every CDC product
}

type vaccineInfo struct {
	cvx, name   string
	status      codes.Status
	updated     date
	nonVaccine  bool
	unspecified bool // an "unspecified formulation" code, for history only
	hasVIS      bool // the CDC maps a VIS to it: administered doses need VIS observations
	minDays     int  // youngest plausible age in days (0: none)
	maxDays     int  // oldest plausible age in days (0: none)
	ages        string
}

type mvxInfo struct {
	mvx, name string
	status    codes.Status
	updated   date
}

// ageLimit is the age range in which a vaccine group is given, from ACIP schedules and product
// licensure, with the 4-day grace period ACIP allows before minimum ages. Only clearly
// implausible ages are warned: the upper limits are where no schedule or catch-up goes.
type ageLimit struct {
	minDays, maxDays int
	minText, maxText string
}

const (
	week  = 7
	month = 30 // a month for limits that ACIP states in months (rounded down: a warning, not a rule)
	year  = 365
	grace = 4
)

var ageLimits = map[string]ageLimit{
	"ROTAVIRUS":   {6*week - grace, 8*month + 4, "6 weeks", "8 months"},
	"DTAP":        {6*week - grace, 7 * year, "6 weeks", "7 years"},
	"HIB":         {6*week - grace, 0, "6 weeks", ""},
	"POLIO":       {6*week - grace, 0, "6 weeks", ""},
	"PNEUMOPCV":   {6*week - grace, 0, "6 weeks", ""},
	"TD":          {7*year - grace, 0, "7 years", ""},
	"TDAP":        {7*year - grace, 0, "7 years", ""},
	"HPV":         {9*year - grace, 46 * year, "9 years", "45 years"},
	"ZOSTER":      {18*year - grace, 0, "18 years", ""},
	"FLU":         {6*month - grace, 0, "6 months", ""},
	"COVID-19":    {6*month - grace, 0, "6 months", ""},
	"MMR":         {6*month - grace, 0, "6 months", ""},
	"VARICELLA":   {12*month - grace, 0, "12 months", ""},
	"HEPA":        {6*month - grace, 0, "6 months", ""},
	"PNEUMOPPV":   {2*year - grace, 0, "2 years", ""},
	"MENINGB":     {10*year - grace, 0, "10 years", ""},
	"YELLOWFEVER": {6*month - grace, 0, "6 months", ""},
}

func newCodeTables(s *codes.Set) *codeTables {
	t := &codeTables{
		vaccines: map[string]*vaccineInfo{},
		mvx:      map[string]*mvxInfo{},
		products: map[string]struct{}{},
	}
	for _, v := range s.Vaccines() {
		vi := &vaccineInfo{
			cvx: v.CVX, name: v.ShortName, status: v.Status, nonVaccine: v.NonVaccine,
			unspecified: strings.Contains(strings.ToLower(v.ShortName), "unspecified"),
			hasVIS:      len(s.VISForCVX(v.CVX)) > 0,
		}
		if !v.Updated.IsZero() {
			vi.updated = dateOf(v.Updated)
		}
		var minText, maxText string
		for _, g := range v.Groups {
			l, ok := ageLimits[strings.ToUpper(g)]
			if !ok {
				continue
			}
			if l.minDays > vi.minDays {
				vi.minDays, minText = l.minDays, l.minText
			}
			if l.maxDays > 0 && (vi.maxDays == 0 || l.maxDays < vi.maxDays) {
				vi.maxDays, maxText = l.maxDays, l.maxText
			}
		}
		switch {
		case minText != "" && maxText != "":
			vi.ages = "from " + minText + " to " + maxText
		case minText != "":
			vi.ages = "from " + minText
		case maxText != "":
			vi.ages = "before " + maxText
		}
		t.vaccines[v.CVX] = vi
		for _, p := range s.Products(v.CVX) {
			if p.MVX != "" {
				t.products[v.CVX+"|"+p.MVX] = struct{}{}
			}
		}
	}
	for _, m := range s.Manufacturers() {
		mi := &mvxInfo{mvx: m.MVX, name: m.Name, status: m.Status}
		if !m.Updated.IsZero() {
			mi.updated = dateOf(m.Updated)
		}
		t.mvx[m.MVX] = mi
	}
	return t
}

// vaccine looks a CVX code up as the message has it: surrounding spaces and leading zeros do not
// matter ("8", "008" and "08" are hepatitis B), as in codes.NormalizeCVX.
func (t *codeTables) vaccine(raw []byte) *vaccineInfo {
	var buf [8]byte
	b := canonicalCVX(buf[:0], raw)
	if b == nil {
		return nil
	}
	return t.vaccines[string(b)]
}

func canonicalCVX(dst, raw []byte) []byte {
	raw = trimSpace(raw)
	for len(raw) > 1 && raw[0] == '0' {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 6 || !isDigits(raw) {
		return nil
	}
	if len(raw) == 1 {
		dst = append(dst, '0')
	}
	return append(dst, raw...)
}

// manufacturer looks an MVX code up, ignoring case and surrounding spaces.
func (t *codeTables) manufacturer(raw []byte) *mvxInfo {
	var buf [16]byte
	raw = trimSpace(raw)
	if len(raw) == 0 || len(raw) > len(buf) {
		return nil
	}
	b := buf[:0]
	for _, c := range raw {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return t.mvx[string(b)]
}

// isProduct reports whether the CDC lists a product with this CVX and MVX.
func (t *codeTables) isProduct(cvx, mvx string) bool {
	var buf [32]byte
	b := append(append(append(buf[:0], cvx...), '|'), mvx...)
	_, ok := t.products[string(b)]
	return ok
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}
