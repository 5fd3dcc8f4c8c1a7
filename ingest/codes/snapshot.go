package codes

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The snapshot format, version 1. UTF-8 text, one record per line, fields separated by tabs, lines
// ending in LF (CRLF is accepted on reading, for checkouts that convert line ends). Values never
// contain tabs, line breaks or other control characters: the CDC parsers collapse them to spaces.
// Dates are YYYYMMDD, empty when unknown. Records are sorted, so that the same tables always give
// the same bytes (the regeneration test compares them) and a diff of two snapshots reads as a
// change log of the CDC tables.
//
//	vaxgate-codes  1                                                      first line: format, version
//	source   kind  format  file  newest  records                          the CDC files it came from
//	cvx      code  status  nonvaccine(1, 0 or empty)  updated  short-name  full-name
//	mvx      code  status  updated  name
//	product  cvx  mvx  status  mvx-status  updated  name
//	group    name  cvx                                                    a vaccine group and its CVX
//	member   cvx  group                                                   CVX belongs to vaccine group
//	ndc      ndc  use|sale  cvx  mvx  start  end  updated  name  labeler
//	vis      document  gdti  status  edition  updated  name
//	cvxvis   cvx  document
//	visurl   gdti  pdf-url  html-url  name
//	cpt      cpt  cvx  updated  description
//	end      number of records between the first line and this one       guards against truncation
const (
	snapshotMagic   = "vaxgate-codes"
	snapshotVersion = 1
)

// The fields of each record type, counting the tag.
var snapshotFields = map[string]int{
	"source": 6, "cvx": 7, "mvx": 5, "product": 7, "group": 3, "member": 3,
	"ndc": 10, "vis": 7, "cvxvis": 3, "visurl": 5, "cpt": 5, "end": 2,
}

// MarshalBinary encodes the Set in the snapshot format described above.
func (s *Set) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	n := 0
	line := func(fields ...string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(f)
		}
		b.WriteByte('\n')
		n++
	}
	line(snapshotMagic, strconv.Itoa(snapshotVersion))
	n = 0

	for _, src := range s.sortedSources() {
		line("source", string(src.Kind), string(src.Format), src.File, day(src.Newest), strconv.Itoa(src.Records))
	}
	for _, k := range sortedKeys(s.vaccines, cmpCode) {
		v := s.vaccines[k]
		nv := ""
		if v.NonVaccineKnown {
			nv = "0"
			if v.NonVaccine {
				nv = "1"
			}
		}
		line("cvx", v.CVX, string(v.Status), nv, day(v.Updated), v.ShortName, v.FullName)
	}
	for _, k := range sortedKeys(s.manufacturers, strings.Compare) {
		m := s.manufacturers[k]
		line("mvx", m.MVX, string(m.Status), day(m.Updated), m.Name)
	}
	for _, k := range sortedKeys(s.products, cmpCode) {
		for _, p := range sortedCopy(s.products[k], cmpProduct) {
			line("product", p.CVX, p.MVX, string(p.Status), string(p.MVXStatus), day(p.Updated), p.Name)
		}
	}
	for _, k := range sortedKeys(s.groups, strings.Compare) {
		g := s.groups[k]
		line("group", g.Name, g.CVX)
	}
	for _, k := range sortedKeys(s.vaccineGroups, cmpCode) {
		for _, g := range sortedCopy(s.vaccineGroups[k], strings.Compare) {
			line("member", k, g)
		}
	}
	for _, k := range sortedKeys(s.ndc, strings.Compare) {
		for _, e := range sortedCopy(s.ndc[k], cmpNDC) {
			line("ndc", e.NDC, string(e.Kind), e.CVX, e.MVX, day(e.Start), day(e.End), day(e.Updated), e.Name, e.Labeler)
		}
	}
	for _, k := range sortedKeys(s.vis, strings.Compare) {
		v := s.vis[k]
		line("vis", v.Document, v.GDTI, v.Status, day(v.Edition), day(v.Updated), v.Name)
	}
	for _, k := range sortedKeys(s.cvxVIS, cmpCode) {
		for _, d := range sortedCopy(s.cvxVIS[k], strings.Compare) {
			line("cvxvis", k, d)
		}
	}
	for _, k := range sortedKeys(s.visURL, strings.Compare) {
		u := s.visURL[k]
		line("visurl", u.GDTI, u.PDF, u.HTML, u.Name)
	}
	for _, k := range sortedKeys(s.cpt, strings.Compare) {
		for _, c := range sortedCopy(s.cpt[k], cmpCPT) {
			line("cpt", c.CPT, c.CVX, day(c.Updated), c.Description)
		}
	}
	line("end", strconv.Itoa(n))
	return b.Bytes(), nil
}

func sortedCopy[T any](s []T, cmp func(a, b T) int) []T {
	s = slices.Clone(s)
	slices.SortFunc(s, cmp)
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("20060102")
}

// Unmarshal decodes a snapshot written by MarshalBinary. It checks everything it reads (format
// version, field counts, canonical codes, dates, duplicates, the record count) and says which line
// is wrong: a snapshot may come from a file an operator edited or truncated.
func Unmarshal(data []byte) (*Set, error) {
	s := newSet()
	u := unmarshaler{s: s, seen: map[string]bool{}}
	if err := u.run(data); err != nil {
		return nil, err
	}
	s.index()
	return s, nil
}

type unmarshaler struct {
	s    *Set
	line int
	seen map[string]bool // duplicate detection: tag + key
}

func (u *unmarshaler) fail(format string, args ...any) error {
	return &ParseError{File: "snapshot", Line: u.line, Err: fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)}
}

func (u *unmarshaler) run(data []byte) error {
	text := string(data)
	records := 0
	ended := false
	for l := range strings.Lines(text) {
		u.line++
		if !strings.HasSuffix(l, "\n") {
			return u.fail("last line does not end in a line break (truncated?)")
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if !utf8.ValidString(l) {
			return u.fail("not UTF-8")
		}
		for i := 0; i < len(l); i++ {
			if l[i] < 0x20 && l[i] != '\t' || l[i] == 0x7f {
				return u.fail("control character 0x%02x", l[i])
			}
		}
		f := strings.Split(l, "\t")
		if u.line == 1 {
			if len(f) != 2 || f[0] != snapshotMagic {
				return u.fail("not a vaxgate code snapshot")
			}
			if f[1] != strconv.Itoa(snapshotVersion) {
				return u.fail("format version %q, this build reads version %d", f[1], snapshotVersion)
			}
			continue
		}
		if ended {
			return u.fail("data after the end record")
		}
		want, ok := snapshotFields[f[0]]
		if !ok {
			return u.fail("unknown record type %q", f[0])
		}
		if len(f) != want {
			return u.fail("%s record with %d fields, want %d", f[0], len(f), want)
		}
		if f[0] == "end" {
			n, err := strconv.Atoi(f[1])
			if err != nil || n != records {
				return u.fail("end record counts %q records, the snapshot has %d", f[1], records)
			}
			ended = true
			continue
		}
		if err := u.record(f); err != nil {
			return err
		}
		records++
	}
	if u.line == 0 {
		return u.fail("empty")
	}
	if !ended {
		return u.fail("no end record (truncated?)")
	}
	return nil
}

func (u *unmarshaler) unique(parts ...string) error {
	k := strings.Join(parts, "\t")
	if u.seen[k] {
		return u.fail("duplicate %s record %q", parts[0], strings.Join(parts[1:], " "))
	}
	u.seen[k] = true
	return nil
}

func (u *unmarshaler) date(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if len(v) != 8 || !allDigits(v) {
		return time.Time{}, u.fail("date %q is not YYYYMMDD", v)
	}
	t, err := time.Parse("20060102", v)
	if err != nil || t.Year() < 1900 || t.Year() > 2199 {
		return time.Time{}, u.fail("bad date %q", v)
	}
	return t, nil
}

func (u *unmarshaler) dates(vs ...string) ([]time.Time, error) {
	out := make([]time.Time, len(vs))
	for i, v := range vs {
		t, err := u.date(v)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func (u *unmarshaler) cvx(v string) error {
	if v == "" || !allDigits(v) || NormalizeCVX(v) != v || len(v) > 4 {
		return u.fail("CVX %q is not a canonical CVX code", v)
	}
	return nil
}

func (u *unmarshaler) mvx(v string, optional bool) error {
	if v == "" && optional {
		return nil
	}
	if v == "" || NormalizeMVX(v) != v || strings.ContainsRune(v, ' ') {
		return u.fail("MVX %q is not a canonical MVX code", v)
	}
	return nil
}

func (u *unmarshaler) status(v string, optional bool) error {
	if v == "" && !optional || strings.TrimSpace(v) != v {
		return u.fail("bad status %q", v)
	}
	return nil
}

func nonEmpty(u *unmarshaler, what, v string) error {
	if v == "" {
		return u.fail("empty %s", what)
	}
	return nil
}

func (u *unmarshaler) record(f []string) error {
	s := u.s
	var err error
	check := func(errs ...error) error { // the first problem of the line
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		return nil
	}
	switch f[0] {
	case "source":
		n, aerr := strconv.Atoi(f[5])
		if !Kind(f[1]).valid() || !Format(f[2]).valid() || aerr != nil || n < 0 {
			return u.fail("bad source record")
		}
		t, err := u.date(f[4])
		if err := check(err, u.unique("source", f[1], f[2])); err != nil {
			return err
		}
		s.sources[sourceKey{Kind(f[1]), Format(f[2])}] = Source{Kind: Kind(f[1]), Format: Format(f[2]), File: f[3], Newest: t, Records: n}

	case "cvx":
		var nv, known bool
		switch f[3] {
		case "1":
			nv, known = true, true
		case "0":
			known = true
		case "":
		default:
			return u.fail("non-vaccine flag %q is not 1, 0 or empty", f[3])
		}
		t, derr := u.date(f[4])
		if err = check(u.cvx(f[1]), u.status(f[2], false), derr, u.unique("cvx", f[1])); err != nil {
			return err
		}
		s.vaccines[f[1]] = vaccineRec{CVX: f[1], Status: Status(f[2]), NonVaccine: nv, NonVaccineKnown: known,
			Updated: t, ShortName: f[5], FullName: f[6]}

	case "mvx":
		t, derr := u.date(f[3])
		if err = check(u.mvx(f[1], false), u.status(f[2], false), derr, u.unique("mvx", f[1])); err != nil {
			return err
		}
		s.manufacturers[f[1]] = Manufacturer{MVX: f[1], Status: Status(f[2]), Updated: t, Name: f[4]}

	case "product":
		t, derr := u.date(f[5])
		p := Product{CVX: f[1], MVX: f[2], Status: Status(f[3]), MVXStatus: Status(f[4]), Updated: t, Name: f[6]}
		k := productKey(p)
		if err = check(u.cvx(f[1]), u.mvx(f[2], true), u.status(f[3], false), u.status(f[4], true), derr,
			nonEmpty(u, "product name", f[6]), u.unique("product", k[0], k[1], k[2])); err != nil {
			return err
		}
		s.products[p.CVX] = append(s.products[p.CVX], p)

	case "group":
		if f[2] != "" {
			err = u.cvx(f[2])
		}
		k := strings.ToUpper(f[1])
		if err = check(err, nonEmpty(u, "group name", f[1]), u.unique("group", k)); err != nil {
			return err
		}
		s.groups[k] = VaccineGroup{Name: f[1], CVX: f[2]}

	case "member":
		if err = check(u.cvx(f[1]), nonEmpty(u, "group name", f[2]), u.unique("member", f[1], strings.ToUpper(f[2]))); err != nil {
			return err
		}
		s.vaccineGroups[f[1]] = append(s.vaccineGroups[f[1]], f[2])

	case "ndc":
		ndc, ok := NormalizeNDC(f[1])
		if !ok || ndc != f[1] {
			return u.fail("NDC %q is not in the 5-4-2 form", f[1])
		}
		if k := NDCKind(f[2]); k != NDCUnitOfUse && k != NDCUnitOfSale {
			return u.fail("NDC kind %q is not use or sale", f[2])
		}
		ts, derr := u.dates(f[5], f[6], f[7])
		if err = check(derr, u.cvx(f[3]), u.mvx(f[4], true), u.unique("ndc", f[1], f[2], f[3], f[4])); err != nil {
			return err
		}
		s.ndc[ndc] = append(s.ndc[ndc], NDCCode{NDC: ndc, Kind: NDCKind(f[2]), CVX: f[3], MVX: f[4],
			Start: ts[0], End: ts[1], Updated: ts[2], Name: f[8], Labeler: f[9]})

	case "vis":
		ts, derr := u.dates(f[4], f[5])
		if err = check(derr, nonEmpty(u, "VIS document", f[1]), u.unique("vis", f[1])); err != nil {
			return err
		}
		s.vis[f[1]] = VIS{Document: f[1], GDTI: f[2], Status: f[3], Edition: ts[0], Updated: ts[1], Name: f[6]}

	case "cvxvis":
		if err = check(u.cvx(f[1]), nonEmpty(u, "VIS document", f[2]), u.unique("cvxvis", f[1], f[2])); err != nil {
			return err
		}
		s.cvxVIS[f[1]] = append(s.cvxVIS[f[1]], f[2])

	case "visurl":
		if err = check(nonEmpty(u, "GDTI", f[1]), u.unique("visurl", f[1])); err != nil {
			return err
		}
		s.visURL[f[1]] = visURL{GDTI: f[1], PDF: f[2], HTML: f[3], Name: f[4]}

	case "cpt":
		t, derr := u.date(f[3])
		if err = check(nonEmpty(u, "CPT code", f[1]), u.cvx(f[2]), derr, u.unique("cpt", f[1], f[2])); err != nil {
			return err
		}
		if strings.ToUpper(f[1]) != f[1] {
			return u.fail("CPT code %q is not upper case", f[1])
		}
		s.cpt[f[1]] = append(s.cpt[f[1]], CPTCode{CPT: f[1], CVX: f[2], Updated: t, Description: f[4]})
	}
	return nil
}

// The orders in which MarshalBinary writes the records of one key.

func cmpProduct(a, b Product) int {
	if c := cmpCode(a.CVX, b.CVX); c != 0 {
		return c
	}
	if c := strings.Compare(a.MVX, b.MVX); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func cmpNDC(a, b NDCCode) int {
	if c := strings.Compare(a.NDC, b.NDC); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	if c := cmpCode(a.CVX, b.CVX); c != 0 {
		return c
	}
	return strings.Compare(a.MVX, b.MVX)
}

func cmpCPT(a, b CPTCode) int {
	if c := strings.Compare(a.CPT, b.CPT); c != 0 {
		return c
	}
	return cmpCode(a.CVX, b.CVX)
}
