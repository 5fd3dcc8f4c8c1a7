package codes

import (
	_ "embed" // the snapshot
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Status is the CDC status of a CVX, MVX or product code.
type Status string

// The CDC statuses. Validation rules: Active is fine; Inactive is a historical code (new
// administrations are warned); Never Active and Non-US codes are errors for US administrations;
// Pending codes are announced but not yet usable. A status the CDC may add later is kept verbatim.
const (
	StatusActive      Status = "Active"
	StatusInactive    Status = "Inactive"
	StatusNeverActive Status = "Never Active"
	StatusNonUS       Status = "Non-US"
	StatusPending     Status = "Pending"
)

// Known reports whether s is one of the statuses this package knows.
func (s Status) Known() bool {
	switch s {
	case StatusActive, StatusInactive, StatusNeverActive, StatusNonUS, StatusPending:
		return true
	}
	return false
}

// Vaccine is a CVX code.
type Vaccine struct {
	CVX        string // canonical code: "08", "140", "998"
	ShortName  string // CDC short description, e.g. "Hep B, adolescent or pediatric"
	FullName   string // CDC full vaccine name
	Status     Status
	NonVaccine bool      // immune globulins, antitoxins, adjuvants, 998 and 999: not a vaccine dose
	Groups     []string  // vaccine group names (e.g. "HepB"); a combination vaccine has several
	Updated    time.Time // CDC "last updated" date (UTC midnight); zero if unknown
}

// Manufacturer is an MVX code.
type Manufacturer struct {
	MVX     string // upper case: "PMC", "MSD"
	Name    string
	Status  Status
	Updated time.Time
}

// Product is a CDC product name (tradename) with its CVX and MVX: the list of real CVX–MVX pairs.
type Product struct {
	Name      string // CDC product name, e.g. "FLUZONE-PRESERVATIVE FREE"
	CVX       string
	MVX       string // empty for a few old products the CDC lists without a manufacturer
	MVXStatus Status // status of the manufacturer code
	Status    Status // status of the product name
	Updated   time.Time
}

// NDCKind says which CDC NDC table an NDC comes from.
type NDCKind string

// Unit of use is the NDC on the dose itself (vial, syringe); unit of sale is the package it is sold
// in. The implementation guide asks for the unit-of-use NDC, but senders send both.
const (
	NDCUnitOfUse  NDCKind = "use"
	NDCUnitOfSale NDCKind = "sale"
)

// NDCCode is one CDC NDC crosswalk entry. An NDC may have several entries: the CDC maps some NDCs
// to two CVX codes (Engerix-B is both 43 and 44), links some to two manufacturers (after a merger)
// or lists them as both unit of use and unit of sale.
type NDCCode struct {
	NDC     string // 11-digit 5-4-2 form with hyphens: "49281-0425-50"
	Kind    NDCKind
	CVX     string
	MVX     string // from the CDC NDC linker; empty if the CDC links none
	Name    string // proprietary name, e.g. "FLUZONE TRIVALENT NORTHERN HEMISPHERE"
	Labeler string // e.g. "Sanofi Pasteur Inc."
	Start   time.Time
	End     time.Time // zero while the NDC is still marketed
	Updated time.Time
}

// VaccineGroup is a CDC vaccine group, with the CVX code that stands for the group as a whole
// ("unspecified formulation").
type VaccineGroup struct {
	Name string // e.g. "HepB", "FLU", "MMR"
	CVX  string // e.g. "45" for HepB
}

// VIS is one edition of a Vaccine Information Statement.
type VIS struct {
	// Document is the fully encoded GS1 string senders report in OBX-5 for LOINC 69764-9 with
	// coding system cdcgs1vis, e.g. "253088698300001111110714".
	Document string
	GDTI     string    // document type code, e.g. "0886983000011"
	Name     string    // e.g. "Adenovirus VIS"
	Edition  time.Time // edition date (what OBX 29768-9 reports)
	Status   string    // "Current" or "Historic"
	Updated  time.Time
	PDFURL   string // where the CDC publishes the current edition of this document type, if known
	HTMLURL  string
}

// CPTCode maps a CPT code to a CVX code. A CPT code may map to several CVX codes.
type CPTCode struct {
	CPT         string
	CVX         string
	Description string
	Updated     time.Time
}

// Source records one CDC file the Set was built from.
type Source struct {
	Kind    Kind
	Format  Format
	File    string    // base name of the file as imported
	Newest  time.Time // newest "last updated" date in the file: the file's effective date
	Records int       // records read from the file
}

// Stats are counts for logs and metrics.
type Stats struct {
	Vaccines         int
	VaccinesByStatus map[Status]int
	Manufacturers    int
	Products         int
	ProductPairs     int // distinct CVX–MVX pairs
	Groups           int
	NDCs             int // distinct NDC codes
	NDCEntries       int
	VIS              int // VIS editions
	CVXVIS           int // CVX → VIS links
	CPT              int // distinct CPT codes
	Newest           time.Time
	Sources          []Source
}

// Set is a complete collection of code tables. It is immutable after construction and safe for
// concurrent use; all lookups are map lookups. Import builds a new Set and leaves its base alone.
// The zero Set is empty.
type Set struct {
	vaccines      map[string]vaccineRec   // by CVX
	manufacturers map[string]Manufacturer // by MVX
	products      map[string][]Product    // by CVX
	vaccineGroups map[string][]string     // CVX → group names (sorted)
	groups        map[string]VaccineGroup // by upper-case group name
	ndc           map[string][]NDCCode    // by canonical NDC
	vis           map[string]VIS          // by Document
	cvxVIS        map[string][]string     // CVX → VIS Documents
	visURL        map[string]visURL       // by GDTI
	cpt           map[string][]CPTCode    // by CPT
	sources       map[sourceKey]Source

	// Derived by index(), never marshalled.
	pairs    map[pairKey]struct{}
	groupsOf map[string][]string // upper-case group name → member CVX codes
	stats    Stats
}

// vaccineRec is the stored form of a Vaccine: groups live in vaccineGroups, and the record
// remembers whether its source said anything about NonVaccine (cvx.txt does, the XML does not).
type vaccineRec struct {
	CVX, ShortName, FullName string
	Status                   Status
	NonVaccine               bool
	NonVaccineKnown          bool
	Updated                  time.Time
}

type visURL struct {
	GDTI, Name, PDF, HTML string
}

type pairKey struct{ cvx, mvx string }

type sourceKey struct {
	kind   Kind
	format Format
}

//go:embed snapshot.dat
var snapshot []byte

var defaultSet = sync.OnceValue(func() *Set {
	s, err := Unmarshal(snapshot)
	if err != nil {
		// The snapshot is compiled in and checked by the tests: failing here is a build defect.
		panic(fmt.Sprintf("codes: embedded snapshot: %v", err))
	}
	return s
})

// Default returns the code tables embedded in the binary, parsed on first use.
func Default() *Set { return defaultSet() }

// Vaccine looks a CVX code up. The code is normalised first (see NormalizeCVX).
func (s *Set) Vaccine(cvx string) (Vaccine, bool) {
	r, ok := s.vaccines[NormalizeCVX(cvx)]
	if !ok {
		return Vaccine{}, false
	}
	return s.vaccine(r), true
}

func (s *Set) vaccine(r vaccineRec) Vaccine {
	return Vaccine{
		CVX:        r.CVX,
		ShortName:  r.ShortName,
		FullName:   r.FullName,
		Status:     r.Status,
		NonVaccine: r.NonVaccine,
		Groups:     slices.Clone(s.vaccineGroups[r.CVX]), // callers may not change our copy
		Updated:    r.Updated,
	}
}

// Vaccines returns all CVX codes in code order.
func (s *Set) Vaccines() []Vaccine {
	out := make([]Vaccine, 0, len(s.vaccines))
	for _, k := range sortedKeys(s.vaccines, cmpCode) {
		out = append(out, s.vaccine(s.vaccines[k]))
	}
	return out
}

// Manufacturer looks an MVX code up, ignoring case and surrounding spaces.
func (s *Set) Manufacturer(mvx string) (Manufacturer, bool) {
	m, ok := s.manufacturers[NormalizeMVX(mvx)]
	return m, ok
}

// Manufacturers returns all MVX codes in code order.
func (s *Set) Manufacturers() []Manufacturer {
	out := make([]Manufacturer, 0, len(s.manufacturers))
	for _, k := range sortedKeys(s.manufacturers, strings.Compare) {
		out = append(out, s.manufacturers[k])
	}
	return out
}

// Products returns the products of a CVX code: active products first, then by name.
func (s *Set) Products(cvx string) []Product {
	return slices.Clone(s.products[NormalizeCVX(cvx)])
}

// IsProduct reports whether the CDC lists a product with this CVX and MVX: whether the pair is
// real. The product's status is not considered (an inactive product is still a real pair for a
// historical dose); use Products for the statuses.
func (s *Set) IsProduct(cvx, mvx string) bool {
	_, ok := s.pairs[pairKey{NormalizeCVX(cvx), NormalizeMVX(mvx)}]
	return ok
}

// Group looks a vaccine group up by name, ignoring case.
func (s *Set) Group(name string) (VaccineGroup, bool) {
	g, ok := s.groups[strings.ToUpper(strings.TrimSpace(name))]
	return g, ok
}

// Groups returns all vaccine groups by name.
func (s *Set) Groups() []VaccineGroup {
	out := slices.Collect(maps.Values(s.groups))
	slices.SortFunc(out, func(a, b VaccineGroup) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// GroupMembers returns the CVX codes that belong to a vaccine group, in code order.
func (s *Set) GroupMembers(name string) []string {
	return slices.Clone(s.groupsOf[strings.ToUpper(strings.TrimSpace(name))])
}

// NDC looks an NDC up and returns its primary entry: of several entries, one whose manufacturer is
// active, still marketed, lowest CVX, in that order of preference. It accepts the 11-digit form
// with or without hyphens and the 10-digit forms 4-4-2, 5-3-2 and 5-4-1 with hyphens; a 10-digit
// code without hyphens is ambiguous and is found only if exactly one of its three readings exists.
func (s *Set) NDC(code string) (NDCCode, bool) {
	e := s.ndcEntries(code)
	if len(e) == 0 {
		return NDCCode{}, false
	}
	return e[0], true
}

// NDCs returns all entries of an NDC, the primary one first (see NDC).
func (s *Set) NDCs(code string) []NDCCode {
	return slices.Clone(s.ndcEntries(code))
}

func (s *Set) ndcEntries(code string) []NDCCode {
	if key, ok := NormalizeNDC(code); ok {
		return s.ndc[key]
	}
	var found []NDCCode
	for _, key := range ndc10Readings(code) {
		if e := s.ndc[key]; len(e) > 0 {
			if found != nil {
				return nil // ambiguous
			}
			found = e
		}
	}
	return found
}

// VIS looks a VIS edition up by its fully encoded GS1 document string.
func (s *Set) VIS(document string) (VIS, bool) {
	v, ok := s.vis[strings.TrimSpace(document)]
	if !ok {
		return VIS{}, false
	}
	return s.withURL(v), true
}

// VISForCVX returns the VIS editions the CDC maps to a CVX code, newest edition first.
func (s *Set) VISForCVX(cvx string) []VIS {
	docs := s.cvxVIS[NormalizeCVX(cvx)]
	out := make([]VIS, 0, len(docs))
	for _, d := range docs {
		if v, ok := s.vis[d]; ok {
			out = append(out, s.withURL(v))
		}
	}
	slices.SortStableFunc(out, func(a, b VIS) int { return b.Edition.Compare(a.Edition) })
	return out
}

func (s *Set) withURL(v VIS) VIS {
	if u, ok := s.visURL[v.GDTI]; ok {
		v.PDFURL, v.HTMLURL = u.PDF, u.HTML
	}
	return v
}

// CPT returns the CVX mappings of a CPT code.
func (s *Set) CPT(code string) []CPTCode {
	return slices.Clone(s.cpt[strings.ToUpper(strings.TrimSpace(code))])
}

// Stats returns counts of the tables and the source files they came from.
func (s *Set) Stats() Stats {
	st := s.stats
	st.VaccinesByStatus = maps.Clone(s.stats.VaccinesByStatus)
	st.Sources = slices.Clone(s.stats.Sources)
	return st
}

// newSet returns an empty Set ready to be filled.
func newSet() *Set {
	return &Set{
		vaccines:      map[string]vaccineRec{},
		manufacturers: map[string]Manufacturer{},
		products:      map[string][]Product{},
		vaccineGroups: map[string][]string{},
		groups:        map[string]VaccineGroup{},
		ndc:           map[string][]NDCCode{},
		vis:           map[string]VIS{},
		cvxVIS:        map[string][]string{},
		visURL:        map[string]visURL{},
		cpt:           map[string][]CPTCode{},
		sources:       map[sourceKey]Source{},
	}
}

// clone copies the primary tables so that an import can change the copy. Slices are shared: the
// import code replaces slice values in the maps, it never writes into them.
func (s *Set) clone() *Set {
	return &Set{
		vaccines:      cloneMap(s.vaccines),
		manufacturers: cloneMap(s.manufacturers),
		products:      cloneMap(s.products),
		vaccineGroups: cloneMap(s.vaccineGroups),
		groups:        cloneMap(s.groups),
		ndc:           cloneMap(s.ndc),
		vis:           cloneMap(s.vis),
		cvxVIS:        cloneMap(s.cvxVIS),
		visURL:        cloneMap(s.visURL),
		cpt:           cloneMap(s.cpt),
		sources:       cloneMap(s.sources),
	}
}

// cloneMap is maps.Clone that never returns nil, so that a zero Set can be a base.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return maps.Clone(m)
}

// index puts every slice in its documented order and computes the derived lookups and the stats.
// It runs once, before the Set is published.
func (s *Set) index() {
	for k, ps := range s.products {
		ps = slices.Clone(ps)
		slices.SortFunc(ps, cmpProductLookup)
		s.products[k] = ps
	}
	for k, e := range s.ndc {
		e = slices.Clone(e)
		slices.SortFunc(e, s.cmpNDCPrimary)
		s.ndc[k] = e
	}
	s.pairs = map[pairKey]struct{}{}
	for _, ps := range s.products {
		for _, p := range ps {
			s.pairs[pairKey{p.CVX, p.MVX}] = struct{}{}
		}
	}
	s.groupsOf = map[string][]string{}
	for cvx, gs := range s.vaccineGroups {
		for _, g := range gs {
			k := strings.ToUpper(g)
			s.groupsOf[k] = append(s.groupsOf[k], cvx)
		}
	}
	for _, m := range s.groupsOf {
		slices.SortFunc(m, cmpCode)
	}

	st := Stats{
		Vaccines:         len(s.vaccines),
		VaccinesByStatus: map[Status]int{},
		Manufacturers:    len(s.manufacturers),
		ProductPairs:     len(s.pairs),
		Groups:           len(s.groups),
		NDCs:             len(s.ndc),
		VIS:              len(s.vis),
		CPT:              len(s.cpt),
	}
	for _, v := range s.vaccines {
		st.VaccinesByStatus[v.Status]++
	}
	for _, ps := range s.products {
		st.Products += len(ps)
	}
	for _, e := range s.ndc {
		st.NDCEntries += len(e)
	}
	for _, d := range s.cvxVIS {
		st.CVXVIS += len(d)
	}
	st.Sources = s.sortedSources()
	for _, src := range st.Sources {
		if src.Newest.After(st.Newest) {
			st.Newest = src.Newest
		}
	}
	s.stats = st
}

func (s *Set) sortedSources() []Source {
	out := slices.Collect(maps.Values(s.sources))
	slices.SortFunc(out, func(a, b Source) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(string(a.Format), string(b.Format))
	})
	return out
}

// cmpProductLookup orders the products of a CVX for Products: active first, then by name.
func cmpProductLookup(a, b Product) int {
	if (a.Status == StatusActive) != (b.Status == StatusActive) {
		if a.Status == StatusActive {
			return -1
		}
		return 1
	}
	return cmpProduct(a, b)
}

// cmpNDCPrimary orders the entries of one NDC so that the first is the one to report: an active
// manufacturer (after a merger the CDC links the old and the new one), still marketed, then the
// lowest CVX (the general code before a special-purpose one, 43 before 44), then stable by kind.
func (s *Set) cmpNDCPrimary(a, b NDCCode) int {
	aa, ba := s.manufacturers[a.MVX].Status == StatusActive, s.manufacturers[b.MVX].Status == StatusActive
	if aa != ba {
		if aa {
			return -1
		}
		return 1
	}
	if a.End.IsZero() != b.End.IsZero() {
		if a.End.IsZero() {
			return -1
		}
		return 1
	}
	return cmpNDC(a, b)
}

// cmpCode orders canonical numeric codes numerically ("08" < "10" < "100") and others after them.
func cmpCode(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func sortedKeys[V any](m map[string]V, cmp func(a, b string) int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, cmp)
	return keys
}
