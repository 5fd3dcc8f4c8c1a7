package codes

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ImportReport says what an import did, file by file.
type ImportReport struct {
	Files    []FileReport
	Before   Stats    // the base set
	After    Stats    // the new set
	Warnings []string // cross-table inconsistencies in the new set (a product of an unknown CVX, …)
}

// FileReport is what one file contributed. A record is Added (new key), Updated (changed),
// Unchanged, or Stale: older than what the set already had, and so not applied.
type FileReport struct {
	Name    string
	Kind    Kind
	Format  Format
	Newest  time.Time // the newest last-updated date in the file
	Records int       // records read

	Added, Updated, Unchanged, Stale int

	// Problems lists the lines skipped or read only in part, each with file and line.
	Problems     []*ParseError
	MoreProblems int // problems beyond those listed

	// Ignored says why ImportDir left the file out; empty for an imported file.
	Ignored string
}

// String is a short human-readable summary, for the command line.
func (r ImportReport) String() string {
	var b strings.Builder
	for _, f := range r.Files {
		if f.Ignored != "" {
			fmt.Fprintf(&b, "%s: ignored: %s\n", f.Name, f.Ignored)
			continue
		}
		fmt.Fprintf(&b, "%s: %s (%s), %d records, newest %s: %d added, %d updated, %d unchanged, %d stale\n",
			f.Name, f.Kind, f.Format, f.Records, fmtDay(f.Newest), f.Added, f.Updated, f.Unchanged, f.Stale)
		for _, p := range f.Problems {
			fmt.Fprintf(&b, "  %v\n", p)
		}
		if f.MoreProblems > 0 {
			fmt.Fprintf(&b, "  … and %d more problems\n", f.MoreProblems)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	a := r.After
	fmt.Fprintf(&b, "now: %d CVX, %d MVX, %d products, %d vaccine groups, %d NDCs, %d VIS editions, %d CPT codes\n",
		a.Vaccines, a.Manufacturers, a.Products, a.Groups, a.NDCs, a.VIS, a.CPT)
	return b.String()
}

func fmtDay(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.Format(time.DateOnly)
}

// Import reads CDC code-set files and overlays them on base (nil means an empty set), returning a
// new Set; base is not changed. Each file is recognised by its content. Records replace the
// base's records of the same key unless they are older (by the CDC's last-updated date), so an
// old download never rolls the tables back; keys the files do not mention are kept. Lines that
// cannot be read are skipped and listed in the report. A file that is not a supported CDC file,
// or has no usable record, fails the whole import: nothing is half-imported.
func Import(base *Set, paths ...string) (*Set, ImportReport, error) {
	files := make([]namedData, 0, len(paths))
	for _, p := range paths {
		data, err := readFile(p)
		if err != nil {
			return nil, ImportReport{}, err
		}
		files = append(files, namedData{p, data})
	}
	return importFiles(base, files)
}

// ImportReaders is Import for content that is not in files (an upload): files maps a name, used
// in the report and in errors, to the content.
func ImportReaders(base *Set, files map[string]io.Reader) (*Set, ImportReport, error) {
	names := slices.Sorted(maps.Keys(files)) // map order is random; the result must not be
	nd := make([]namedData, 0, len(files))
	for _, n := range names {
		data, err := readAll(n, files[n])
		if err != nil {
			return nil, ImportReport{}, err
		}
		nd = append(nd, namedData{n, data})
	}
	return importFiles(base, nd)
}

// ImportDir imports every supported CDC file of a directory (not its subdirectories), in name
// order, and lists the others in the report as ignored. go generate builds the embedded snapshot
// with ImportDir(nil, "../shared/codes").
func ImportDir(base *Set, dir string) (*Set, ImportReport, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, ImportReport{}, fmt.Errorf("codes: import: %w", err)
	}
	var parsed []*cdcFile
	var ignored []FileReport
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := readFile(p)
		if err != nil {
			return nil, ImportReport{}, err
		}
		f, err := parseCDC(p, data)
		if errors.Is(err, ErrUnrecognized) {
			reason := err.Error()
			if pe := (*ParseError)(nil); errors.As(err, &pe) {
				reason = pe.Err.Error() // without the file name, which the report has
			}
			ignored = append(ignored, FileReport{Name: p, Ignored: reason})
			continue
		}
		if err != nil {
			return nil, ImportReport{}, err
		}
		parsed = append(parsed, f)
	}
	if len(parsed) == 0 {
		return nil, ImportReport{}, fmt.Errorf("codes: import %s: %w: no CDC code-set file in the directory", dir, ErrUnrecognized)
	}
	return importParsed(base, parsed, ignored)
}

type namedData struct {
	name string
	data []byte
}

func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("codes: import: %w", err)
	}
	defer f.Close()
	return readAll(p, f)
}

func readAll(name string, r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, &ParseError{File: name, Err: errors.New("no content")}
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, &ParseError{File: name, Err: fmt.Errorf("read: %w", err)}
	}
	if int64(len(data)) > maxFileSize {
		return nil, &ParseError{File: name, Err: fmt.Errorf("larger than %d bytes: not a CDC code-set file", maxFileSize)}
	}
	return data, nil
}

func importFiles(base *Set, files []namedData) (*Set, ImportReport, error) {
	if len(files) == 0 {
		return nil, ImportReport{}, errors.New("codes: import: no files")
	}
	parsed := make([]*cdcFile, 0, len(files))
	for _, nd := range files {
		f, err := parseCDC(nd.name, nd.data)
		if err != nil {
			return nil, ImportReport{}, err
		}
		parsed = append(parsed, f)
	}
	return importParsed(base, parsed, nil)
}

func importParsed(base *Set, parsed []*cdcFile, ignored []FileReport) (*Set, ImportReport, error) {
	if base == nil {
		base = newSet()
		base.index()
	}
	rep := ImportReport{Before: base.Stats()}
	if err := resolveNDC(base, parsed); err != nil {
		return nil, rep, err
	}

	s := base.clone()
	for _, f := range parsed {
		c := s.apply(f)
		slices.SortStableFunc(f.problems, func(a, b *ParseError) int { return a.Line - b.Line })
		fr := FileReport{
			Name: f.name, Kind: f.kind, Format: f.format, Newest: f.newest, Records: f.records,
			Added: c.added, Updated: c.updated, Unchanged: c.unchanged, Stale: c.stale,
			Problems: f.problems, MoreProblems: f.moreProblems,
		}
		rep.Files = append(rep.Files, fr)
		key := sourceKey{f.kind, f.format}
		if old, ok := s.sources[key]; !ok || !older(f.newest, old.Newest) {
			s.sources[key] = Source{Kind: f.kind, Format: f.format, File: filepath.Base(f.name), Newest: f.newest, Records: f.records}
		}
	}
	rep.Files = append(rep.Files, ignored...)
	s.index()
	rep.After = s.Stats()
	rep.Warnings = s.check()
	return s, rep, nil
}

// resolveNDC gives each NDC row its manufacturers. The CDC keeps them in a third file, the
// linker, which refers to rows of the unit-of-use and unit-of-sale files by the CDC's own row ids;
// the ids are not kept after the import, so the linker is only useful together with those files.
// When an import has NDC files but no linker, an NDC keeps the manufacturers the base had for it.
func resolveNDC(base *Set, files []*cdcFile) error {
	bySale, byUse := map[string][]string{}, map[string][]string{}
	saleIDs, useIDs := map[string]bool{}, map[string]bool{}
	var linkers []*cdcFile
	for _, f := range files {
		for _, l := range f.links {
			bySale[l.saleID] = appendNew(bySale[l.saleID], l.mvx)
			byUse[l.useID] = appendNew(byUse[l.useID], l.mvx)
		}
		if f.kind == KindNDCLinker {
			linkers = append(linkers, f)
		}
		for _, r := range f.ndcRows {
			if r.entry.Kind == NDCUnitOfSale {
				saleIDs[r.id] = true
			} else {
				useIDs[r.id] = true
			}
		}
	}
	if len(linkers) > 0 && len(saleIDs)+len(useIDs) == 0 {
		return &ParseError{File: linkers[0].name, Err: errors.New(
			"an NDC linker links rows of NDC_Unit_use and NDC_Unit_sale by the CDC's row ids: import it together with them")}
	}
	for _, lf := range linkers {
		for _, l := range lf.links {
			if !saleIDs[l.saleID] && !useIDs[l.useID] {
				lf.problem(l.line, "links unit-of-sale row %s and unit-of-use row %s, neither of which is in this import", l.saleID, l.useID)
			}
		}
	}
	for _, f := range files {
		var rows []ndcRow
		for _, r := range f.ndcRows {
			var mvxs []string
			if r.entry.Kind == NDCUnitOfSale {
				mvxs = bySale[r.id]
			} else {
				mvxs = byUse[r.id]
			}
			if len(mvxs) == 0 {
				if len(linkers) > 0 {
					f.problem(r.line, "NDC %s (CDC row %s) has no linker entry: manufacturer unknown", r.entry.NDC, r.id)
				} else {
					for _, e := range base.ndc[r.entry.NDC] {
						if e.CVX == r.entry.CVX {
							mvxs = appendNew(mvxs, e.MVX)
						}
					}
				}
			}
			if len(mvxs) == 0 {
				mvxs = []string{""}
			}
			slices.Sort(mvxs)
			for _, m := range mvxs {
				e := r.entry
				e.MVX = m
				rows = append(rows, ndcRow{id: r.id, line: r.line, entry: e})
			}
		}
		f.ndcRows = rows
	}
	return nil
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

type counts struct{ added, updated, unchanged, stale int }

func (c *counts) add(old, changed, found bool) {
	switch {
	case !found:
		c.added++
	case old:
		c.stale++
	case changed:
		c.updated++
	default:
		c.unchanged++
	}
}

// older reports whether a is older than b. A record without a date is never older: the import
// wins.
func older(a, b time.Time) bool {
	return !a.IsZero() && !b.IsZero() && a.Before(b)
}

// apply overlays one file on s (a clone being built) and counts what happened.
func (s *Set) apply(f *cdcFile) counts {
	var c counts
	for _, v := range f.vaccines {
		old, found := s.vaccines[v.CVX]
		switch {
		case !found:
			s.vaccines[v.CVX] = v
			c.add(false, true, false)
		case older(v.Updated, old.Updated):
			// Stale, but cvx.txt is the only source of the non-vaccine flag: take it if missing.
			if v.NonVaccineKnown && !old.NonVaccineKnown {
				old.NonVaccine, old.NonVaccineKnown = v.NonVaccine, true
				s.vaccines[v.CVX] = old
			}
			c.add(true, false, true)
		default:
			if !v.NonVaccineKnown {
				v.NonVaccine, v.NonVaccineKnown = old.NonVaccine, old.NonVaccineKnown
			}
			v.ShortName = cmp.Or(v.ShortName, old.ShortName)
			v.FullName = cmp.Or(v.FullName, old.FullName)
			s.vaccines[v.CVX] = v
			c.add(false, v != old, true)
		}
	}

	for _, m := range f.mfrs {
		old, found := s.manufacturers[m.MVX]
		isOld := found && older(m.Updated, old.Updated)
		if !isOld {
			m.Name = cmp.Or(m.Name, old.Name)
			s.manufacturers[m.MVX] = m
		}
		c.add(isOld, m != old, found)
	}

	for _, p := range f.products {
		list := s.products[p.CVX]
		i := slices.IndexFunc(list, func(q Product) bool { return productKey(q) == productKey(p) })
		if i < 0 {
			s.products[p.CVX] = append(slices.Clone(list), p)
			c.add(false, true, false)
			continue
		}
		isOld := older(p.Updated, list[i].Updated)
		changed := p != list[i]
		if !isOld && changed {
			list = slices.Clone(list)
			list[i] = p
			s.products[p.CVX] = list
		}
		c.add(isOld, changed, true)
	}

	if len(f.groups) > 0 {
		members := map[string][]string{}
		for _, g := range f.groups {
			members[g.cvx] = appendNewFold(members[g.cvx], g.group)
			k := strings.ToUpper(g.group)
			if old, ok := s.groups[k]; !ok || g.groupCVX != "" {
				s.groups[k] = VaccineGroup{Name: g.group, CVX: cmp.Or(g.groupCVX, old.CVX)}
			}
		}
		for cvx, gs := range members {
			slices.Sort(gs)
			old, found := s.vaccineGroups[cvx]
			s.vaccineGroups[cvx] = gs
			c.add(false, !slices.Equal(gs, old), found)
		}
	}

	if len(f.ndcRows) > 0 {
		type nk struct {
			ndc  string
			kind NDCKind
		}
		fresh := map[nk][]NDCCode{}
		var order []nk
		for _, r := range f.ndcRows {
			k := nk{r.entry.NDC, r.entry.Kind}
			if _, ok := fresh[k]; !ok {
				order = append(order, k)
			}
			list := fresh[k]
			i := slices.IndexFunc(list, func(e NDCCode) bool { return e.CVX == r.entry.CVX && e.MVX == r.entry.MVX })
			switch {
			case i < 0:
				fresh[k] = append(list, r.entry)
			case !older(r.entry.Updated, list[i].Updated): // a repeated row: the newer one counts
				list[i] = r.entry
			}
		}
		for _, k := range order {
			entries := fresh[k]
			var same, other []NDCCode
			for _, e := range s.ndc[k.ndc] {
				if e.Kind == k.kind {
					same = append(same, e)
				} else {
					other = append(other, e)
				}
			}
			slices.SortFunc(entries, cmpNDC)
			slices.SortFunc(same, cmpNDC)
			isOld := older(newestNDC(entries), newestNDC(same))
			changed := !slices.Equal(entries, same)
			if !isOld && changed {
				s.ndc[k.ndc] = append(other, entries...)
			}
			c.add(isOld, changed, len(same) > 0)
		}
	}

	for _, v := range f.vis {
		old, found := s.vis[v.Document]
		isOld := found && older(v.Updated, old.Updated)
		if !isOld {
			v = mergeVIS(v, old)
			s.vis[v.Document] = v
		}
		c.add(isOld, v != old, found)
	}
	if len(f.cvxVIS) > 0 {
		docs := map[string][]string{}
		for _, r := range f.cvxVIS {
			docs[r.cvx] = appendNew(docs[r.cvx], r.vis.Document)
			// cvxvis.xml carries name, edition and status of the edition too, but no GDTI or date:
			// it fills in and corrects what vis.xml said, and keeps the rest.
			s.vis[r.vis.Document] = mergeVIS(r.vis, s.vis[r.vis.Document])
		}
		for cvx, ds := range docs {
			slices.Sort(ds)
			old, found := s.cvxVIS[cvx]
			s.cvxVIS[cvx] = ds
			c.add(false, !slices.Equal(ds, old), found)
		}
	}
	for _, u := range f.visURLs {
		old, found := s.visURL[u.GDTI]
		s.visURL[u.GDTI] = u
		c.add(false, u != old, found)
	}

	if len(f.cpt) > 0 {
		fresh := map[string][]CPTCode{}
		var order []string
		for _, r := range f.cpt {
			if _, ok := fresh[r.CPT]; !ok {
				order = append(order, r.CPT)
			}
			list := fresh[r.CPT]
			if i := slices.IndexFunc(list, func(e CPTCode) bool { return e.CVX == r.CVX }); i >= 0 {
				list[i] = r
			} else {
				fresh[r.CPT] = append(list, r)
			}
		}
		for _, code := range order {
			list := fresh[code]
			slices.SortFunc(list, cmpCPT)
			old, found := s.cpt[code]
			isOld := older(newestCPT(list), newestCPT(old))
			changed := !slices.Equal(list, old)
			if !isOld {
				s.cpt[code] = list
			}
			c.add(isOld, changed, found)
		}
	}

	// A linker's records have no counts of their own: they are applied through the NDC rows.
	return c
}

func mergeVIS(v, old VIS) VIS {
	v.GDTI = cmp.Or(v.GDTI, old.GDTI)
	v.Name = cmp.Or(v.Name, old.Name)
	v.Status = cmp.Or(v.Status, old.Status)
	if v.Edition.IsZero() {
		v.Edition = old.Edition
	}
	if v.Updated.IsZero() {
		v.Updated = old.Updated
	}
	return v
}

func appendNewFold(s []string, v string) []string {
	if slices.ContainsFunc(s, func(x string) bool { return strings.ToUpper(x) == strings.ToUpper(v) }) {
		return s
	}
	return append(s, v)
}

func productKey(p Product) [3]string { return [3]string{p.CVX, p.MVX, strings.ToUpper(p.Name)} }

func newestNDC(es []NDCCode) time.Time {
	var t time.Time
	for _, e := range es {
		if e.Updated.After(t) {
			t = e.Updated
		}
	}
	return t
}

func newestCPT(cs []CPTCode) time.Time {
	var t time.Time
	for _, c := range cs {
		if c.Updated.After(t) {
			t = c.Updated
		}
	}
	return t
}

// check lists references from one table to codes missing in another, for the import report.
func (s *Set) check() []string {
	const maxWarnings = 50
	var w []string
	add := func(format string, args ...any) {
		w = append(w, fmt.Sprintf(format, args...))
	}
	for _, cvx := range sortedKeys(s.products, cmpCode) {
		for _, p := range s.products[cvx] {
			if _, ok := s.vaccines[p.CVX]; !ok {
				add("product %q: unknown CVX %s", p.Name, p.CVX)
			}
			if _, ok := s.manufacturers[p.MVX]; p.MVX != "" && !ok {
				add("product %q: unknown MVX %s", p.Name, p.MVX)
			}
		}
	}
	for _, cvx := range sortedKeys(s.vaccineGroups, cmpCode) {
		if _, ok := s.vaccines[cvx]; !ok {
			add("vaccine group member: unknown CVX %s", cvx)
		}
	}
	for _, ndc := range sortedKeys(s.ndc, strings.Compare) {
		for _, e := range s.ndc[ndc] {
			if _, ok := s.vaccines[e.CVX]; !ok {
				add("NDC %s: unknown CVX %s", e.NDC, e.CVX)
			}
		}
	}
	for _, code := range sortedKeys(s.cpt, strings.Compare) {
		for _, c := range s.cpt[code] {
			if _, ok := s.vaccines[c.CVX]; !ok {
				add("CPT %s: unknown CVX %s", c.CPT, c.CVX)
			}
		}
	}
	w = slices.Compact(w) // an NDC with two manufacturers would say it twice
	if len(w) > maxWarnings {
		n := len(w) - maxWarnings
		w = append(w[:maxWarnings], fmt.Sprintf("… and %d more", n))
	}
	return w
}
