package codes

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	xunicode "golang.org/x/text/encoding/unicode"
)

// Kind is what a CDC file contains.
type Kind string

// The supported kinds of CDC file, whichever format (pipe text, table with header, XML) they
// come in.
const (
	KindCVX          Kind = "cvx"              // cvx.txt, cvx.xml, cvx_from_cdc_xml.txt
	KindMVX          Kind = "mvx"              // mvx.txt, mvx.xml, mvx_from_cdc_xml.txt
	KindProduct      Kind = "tradename"        // tradename.xml, tradename_cvx_mvx_from_cdc_xml.txt
	KindVaccineGroup Kind = "vaccine-group"    // vac2vg.xml, cvx_vaccine_group_from_cdc_xml.txt
	KindNDCUse       Kind = "ndc-unit-of-use"  // NDC_Unit_use.txt
	KindNDCSale      Kind = "ndc-unit-of-sale" // NDC_Unit_sale.txt
	KindNDCLinker    Kind = "ndc-linker"       // NDC_Linker.txt: CDC row ids of use/sale NDCs → MVX
	KindVIS          Kind = "vis"              // vis.xml: VIS editions
	KindCVXVIS       Kind = "cvx-vis"          // cvxvis.xml: CVX → VIS editions
	KindVISURL       Kind = "vis-url"          // visurl.xml: VIS document type → URLs
	KindCPT          Kind = "cpt"              // cpt.xml: CPT → CVX
)

func (k Kind) valid() bool {
	switch k {
	case KindCVX, KindMVX, KindProduct, KindVaccineGroup, KindNDCUse, KindNDCSale, KindNDCLinker,
		KindVIS, KindCVXVIS, KindVISURL, KindCPT:
		return true
	}
	return false
}

// Format is how a CDC file is written.
type Format string

// The formats.
const (
	FormatPipe  Format = "pipe"  // '|'-separated, no header line: cvx.txt, mvx.txt, the NDC tables
	FormatTable Format = "table" // '|'-separated with a header line naming the columns
	FormatXML   Format = "xml"   // the CDC XML downloads
)

func (f Format) valid() bool { return f == FormatPipe || f == FormatTable || f == FormatXML }

// maxFileSize bounds what Import reads of one file, so an upload cannot exhaust memory. The largest
// CDC file is a few hundred KB. A variable for the tests.
var maxFileSize int64 = 64 << 20

// maxProblems bounds the problems kept per file; a wrong file would otherwise list every line.
const maxProblems = 100

// Detect recognises a CDC code-set file by its content. The error wraps ErrUnrecognized.
func Detect(data []byte) (Kind, Format, error) {
	f, err := parseCDC("", data)
	if err != nil {
		return "", "", err
	}
	return f.kind, f.format, nil
}

// record is one row of a CDC file: field values by normalised column or element name.
type record struct {
	line int
	f    map[string]string
}

// get returns the first non-empty value among the names.
func (r record) get(names ...string) string {
	for _, n := range names {
		if v := r.f[n]; v != "" {
			return v
		}
	}
	return ""
}

// cdcFile is what was read from one file, before it is overlaid on a Set.
type cdcFile struct {
	name   string
	kind   Kind
	format Format

	vaccines []vaccineRec
	mfrs     []Manufacturer
	products []Product
	groups   []groupRow
	ndcRows  []ndcRow
	links    []ndcLink
	vis      []VIS
	cvxVIS   []cvxVISRow
	visURLs  []visURL
	cpt      []CPTCode

	records      int
	newest       time.Time
	problems     []*ParseError
	moreProblems int
}

type groupRow struct {
	cvx, group, groupCVX string
}

type ndcRow struct {
	id    string // the CDC's row id, which the linker file refers to
	line  int
	entry NDCCode
}

type ndcLink struct {
	saleID, useID, mvx string
	line               int
}

type cvxVISRow struct {
	cvx string
	vis VIS
}

func (f *cdcFile) problem(line int, format string, args ...any) {
	if len(f.problems) >= maxProblems {
		f.moreProblems++
		return
	}
	f.problems = append(f.problems, &ParseError{File: f.name, Line: line, Err: fmt.Errorf(format, args...)})
}

func (f *cdcFile) sawDate(t time.Time) {
	if t.After(f.newest) {
		f.newest = t
	}
}

// parseCDC recognises and reads one CDC file. It returns an error only when the file cannot be
// used at all; bad lines are recorded as problems and skipped.
func parseCDC(name string, data []byte) (*cdcFile, error) {
	text, err := decodeText(data)
	if err != nil {
		return nil, &ParseError{File: name, Err: err}
	}
	f := &cdcFile{name: name}
	var recs []record
	if strings.HasPrefix(strings.TrimLeftFunc(text, unicode.IsSpace), "<") {
		recs, err = f.readXML(text)
	} else {
		recs, err = f.readPipe(text)
	}
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		f.convert(r)
	}
	if f.records == 0 {
		if len(f.problems) == 0 {
			return nil, &ParseError{File: name, Err: fmt.Errorf("%s file without records", f.kind)}
		}
		p := f.problems[0]
		return nil, &ParseError{File: name, Line: p.Line, Err: fmt.Errorf("no usable %s record (first problem: %v)", f.kind, p.Err)}
	}
	return f, nil
}

// decodeText turns the bytes of a CDC file into UTF-8. The CDC files are UTF-8 or ASCII today,
// but a file saved by a spreadsheet or an older download may be Windows-1252 (a superset of the
// printable Latin-1) or UTF-16 with a BOM. Text that is valid UTF-8 is taken as UTF-8: Latin-1
// text with accented letters is practically never valid UTF-8.
func decodeText(data []byte) (string, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		data = data[3:]
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		dec := xunicode.UTF16(xunicode.BigEndian, xunicode.ExpectBOM).NewDecoder()
		out, err := dec.Bytes(data)
		if err != nil {
			return "", fmt.Errorf("decode UTF-16: %w", err)
		}
		return string(out), nil
	}
	if utf8.Valid(data) {
		return string(data), nil
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(data)
	if err != nil {
		return "", fmt.Errorf("decode Windows-1252: %w", err)
	}
	return string(out), nil
}

// clean collapses runs of white space and control characters into one space and trims the ends:
// the XML files wrap long notes over lines and indent them, the text files pad codes, and no value
// may carry a tab or a line break into the snapshot.
func clean(s string) string {
	dirty := false
	prevSpace := true // a leading space is dirty
	for _, r := range s {
		sp := isBlank(r)
		if sp && (prevSpace || r != ' ') {
			dirty = true
			break
		}
		prevSpace = sp
	}
	if !dirty && !prevSpace {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for _, r := range s {
		if isBlank(r) {
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isBlank(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError || r == '\uFEFF'
}

// normName turns a column header or XML element name into a lookup key: "CVX Code", "CVXCode"
// and "cvx_code" are all "cvxcode".
func normName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		}
	}
	return b.String()
}

// classify recognises a kind by the column or element names of its records.
func classify(names map[string]bool) Kind {
	switch {
	case names["cdcproductname"] && names["cvxcode"]:
		return KindProduct
	case names["vaccinegroupname"] && names["cvxcode"]:
		return KindVaccineGroup
	case names["cptcode"] && names["cvxcode"]:
		return KindCPT
	case names["fullyencodedstring"] && names["cvxcode"]:
		return KindCVXVIS
	case names["visencodedstring"]:
		return KindVIS
	case names["visgdtidocumentconceptcode"]:
		return KindVISURL
	case names["cvxcode"] && names["status"] &&
		(names["fullvaccinename"] || names["shortdescription"] || names["cvxshortdescription"]):
		return KindCVX
	case names["mvxcode"] && names["manufacturername"]:
		return KindMVX
	}
	return ""
}

// readXML reads a CDC XML download: a root element holding one element per record, whose
// children are either named fields (<CVXCode>) or <Name>/<Value> pairs (mvx.xml, tradename.xml).
// visurl.xml keeps its URLs in xlink:href attributes.
func (f *cdcFile) readXML(text string) ([]record, error) {
	f.format = FormatXML
	d := xml.NewDecoder(strings.NewReader(text))
	d.Strict = false // be liberal: a stray '&' in a note must not lose the whole file
	d.Entity = xml.HTMLEntity
	// decodeText has already made the text UTF-8, whatever the declaration says.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }

	var (
		recs      []record
		root      string
		depth     int
		cur       record
		field     string
		fieldText strings.Builder
		href      string
		pending   string // the last <Name> of a Name/Value pair
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			return nil, &ParseError{File: f.name, Line: line, Err: fmt.Errorf("XML: %w", err)}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				root = t.Name.Local
			case 2:
				line, _ := d.InputPos()
				cur = record{line: line, f: map[string]string{}}
				pending = ""
			case 3:
				field = t.Name.Local
				fieldText.Reset()
				href = ""
				for _, a := range t.Attr {
					if a.Name.Local == "href" {
						href = a.Value
					}
				}
			}
		case xml.CharData:
			if depth >= 3 {
				fieldText.Write(t)
			}
		case xml.EndElement:
			switch depth {
			case 2:
				if len(cur.f) > 0 {
					recs = append(recs, cur)
				}
			case 3:
				v := clean(fieldText.String())
				if v == "" {
					v = clean(href)
				}
				switch normName(field) {
				case "name":
					pending = normName(v)
				case "value":
					if pending != "" {
						cur.f[pending] = v
						pending = ""
					}
				default:
					cur.f[normName(field)] = v
				}
			}
			depth--
		}
	}
	if root == "" {
		return nil, &ParseError{File: f.name, Err: fmt.Errorf("%w: XML without a root element", ErrUnrecognized)}
	}
	names := map[string]bool{}
	for i := 0; i < len(recs) && i < 5; i++ {
		for n := range recs[i].f {
			names[n] = true
		}
	}
	f.kind = classify(names)
	if f.kind == "" {
		hint := ""
		if strings.EqualFold(root, "codeset") {
			hint = " (an AIRA codebase code set, not a CDC download)"
		}
		return nil, &ParseError{File: f.name, Err: fmt.Errorf("%w: XML root <%s>%s", ErrUnrecognized, root, hint)}
	}
	return recs, nil
}

// The headerless pipe layouts, field by field.
var pipeColumns = map[Kind][]string{
	KindProduct:      {"cdcproductname", "shortdescription", "cvxcode", "manufacturer", "mvxcode", "mvxstatus", "productnamestatus", "lastupdated"},
	KindVaccineGroup: {"shortdescription", "cvxcode", "status", "vaccinegroupname", "cvxforvaccinegroup"},
	KindNDCSale: {"id", "labeler", "product", "package", "proprietaryname", "genericname", "labelername",
		"startdate", "enddate", "packageform", "route", "lastupdated", "cvxcode", "cvxshortdescription", "ndc11", "gtin"},
	KindNDCUse: {"id", "labeler", "product", "package", "proprietaryname", "genericname", "labelername",
		"startdate", "enddate", "packageform", "gtin", "cvxcode", "cvxshortdescription", "noinner", "ndc11", "lastupdated", "gtin2"},
	KindNDCLinker: {"id", "saleid", "useid", "mvxcode"},
}

// readPipe reads '|'-separated text: a header line naming the columns (the *_from_cdc_xml.txt
// tables) or none (cvx.txt, mvx.txt, the NDC tables), in which case the layout is recognised by
// the shape of the first lines.
func (f *cdcFile) readPipe(text string) ([]record, error) {
	type line struct {
		n      int
		fields []string
	}
	if strings.IndexByte(text, '\n') < 0 {
		text = strings.ReplaceAll(text, "\r", "\n") // old Mac line ends
	}
	var lines []line
	n := 0
	for l := range strings.Lines(text) {
		n++
		l = strings.TrimRight(l, "\r\n")
		if strings.TrimSpace(l) == "" {
			continue
		}
		lines = append(lines, line{n, splitPipe(l)})
	}
	if len(lines) == 0 {
		return nil, &ParseError{File: f.name, Err: fmt.Errorf("%w: empty file", ErrUnrecognized)}
	}
	if len(lines[0].fields) < 2 {
		return nil, &ParseError{File: f.name, Err: fmt.Errorf("%w: not '|'-separated text", ErrUnrecognized)}
	}

	// A header line?
	header := make([]string, len(lines[0].fields))
	names := map[string]bool{}
	for i, h := range lines[0].fields {
		header[i] = normName(h)
		names[header[i]] = true
	}
	if k := classify(names); k != "" {
		f.kind, f.format = k, FormatTable
		recs := make([]record, 0, len(lines)-1)
		for _, l := range lines[1:] {
			if len(l.fields) != len(header) {
				f.problem(l.n, "%d fields, the header has %d: line skipped", len(l.fields), len(header))
				continue
			}
			r := record{line: l.n, f: make(map[string]string, len(header))}
			for i, v := range l.fields {
				r.f[header[i]] = v
			}
			recs = append(recs, r)
		}
		return recs, nil
	}

	// No header: recognise the layout by the shape of the first lines.
	count := map[Kind]int{}
	sample := min(len(lines), 25)
	for _, l := range lines[:sample] {
		if k := pipeShape(l.fields); k != "" {
			count[k]++
		}
	}
	var best Kind
	for _, k := range []Kind{KindCVX, KindMVX, KindProduct, KindVaccineGroup, KindNDCSale, KindNDCUse, KindNDCLinker} {
		if count[k] > count[best] {
			best = k
		}
	}
	if best == "" || 2*count[best] <= sample {
		return nil, &ParseError{File: f.name, Err: fmt.Errorf("%w: '|'-separated text of unknown layout (%d fields on line %d)",
			ErrUnrecognized, len(lines[0].fields), lines[0].n)}
	}
	f.kind, f.format = best, FormatPipe
	recs := make([]record, 0, len(lines))
	for _, l := range lines {
		r, ok := pipeRecord(best, l.fields)
		if !ok {
			f.problem(l.n, "%d fields: not a %s line, skipped", len(l.fields), best)
			continue
		}
		r.line = l.n
		recs = append(recs, r)
	}
	return recs, nil
}

func splitPipe(l string) []string {
	fields := strings.Split(l, "|")
	for i, v := range fields {
		fields[i] = clean(v)
	}
	return fields
}

// pipeShape says which headerless layout a line looks like, strictly (values must look right):
// it is used only to recognise the file.
func pipeShape(f []string) Kind {
	n := len(f)
	switch {
	case n == 16 && allDigits(f[0]) && f[0] != "" && isNDC(f[14]):
		return KindNDCSale
	case n == 17 && allDigits(f[0]) && f[0] != "" && isNDC(f[14]) && isBool(f[13]):
		return KindNDCUse
	case n == 4 && isID(f[0]) && isID(f[1]) && isID(f[2]) && (f[3] == "" || isMVX(f[3])):
		return KindNDCLinker
	case n == 8 && isID(f[2]) && (f[5] == "" || isStatus(f[5])) && isStatus(f[6]) && isDateOrEmpty(f[7]):
		return KindProduct
	case n == 5 && isID(f[1]) && isStatus(f[2]) && (f[4] == "" || allDigits(f[4])) && !isStatus(f[3]):
		return KindVaccineGroup
	case n >= 7 && isID(f[0]) && isStatus(f[n-3]) && isBool(f[n-2]) && isDateOrEmpty(f[n-1]):
		return KindCVX
	case n >= 5 && isMVX(f[0]) && isStatus(f[n-2]) && isDateOrEmpty(f[n-1]):
		return KindMVX
	}
	return ""
}

// pipeRecord names the fields of a headerless line. Notes may contain '|' in cvx.txt and mvx.txt,
// so those layouts are anchored at both ends.
func pipeRecord(k Kind, f []string) (record, bool) {
	r := record{f: map[string]string{}}
	n := len(f)
	switch k {
	case KindCVX:
		if n < 7 {
			return r, false
		}
		r.f["cvxcode"], r.f["shortdescription"], r.f["fullvaccinename"] = f[0], f[1], f[2]
		r.f["notes"] = strings.Join(f[3:n-3], "|")
		r.f["status"], r.f["nonvaccine"], r.f["lastupdated"] = f[n-3], f[n-2], f[n-1]
	case KindMVX:
		if n < 5 {
			return r, false
		}
		r.f["mvxcode"], r.f["manufacturername"] = f[0], f[1]
		r.f["notes"] = strings.Join(f[2:n-2], "|")
		r.f["status"], r.f["lastupdated"] = f[n-2], f[n-1]
	default:
		cols := pipeColumns[k]
		if n != len(cols) {
			return r, false
		}
		for i, c := range cols {
			r.f[c] = f[i]
		}
	}
	return r, true
}

func isID(s string) bool { return s != "" && len(s) <= 12 && allDigits(s) }

func isMVX(s string) bool {
	if s == "" || len(s) > 4 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func isNDC(s string) bool { _, ok := NormalizeNDC(s); return ok }

func isBool(s string) bool { _, ok := parseBool(s); return ok }

func isStatus(s string) bool { return parseStatus(s).Known() }

func isDateOrEmpty(s string) bool {
	if s == "" {
		return true
	}
	_, err := parseDate(s)
	return err == nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "y", "1":
		return true, true
	case "false", "f", "no", "n", "0":
		return false, true
	}
	return false, false
}

// parseStatus maps the CDC's spellings ("Never Active", "never active", "Non-US", "Non US") to the
// constants. Anything else is returned trimmed, for the caller to report and keep.
func parseStatus(s string) Status {
	switch normName(s) {
	case "active":
		return StatusActive
	case "inactive":
		return StatusInactive
	case "neveractive":
		return StatusNeverActive
	case "nonus":
		return StatusNonUS
	case "pending":
		return StatusPending
	}
	return Status(strings.TrimSpace(s))
}

// The date layouts found in CDC files: 2010/05/28 (cvx.txt), 3/20/2011 (XML and tables),
// 2025-07-16 00:00:00 (NDC last updated), 20250701 (NDC start and end).
var dateLayouts = []string{
	"2006/1/2", "1/2/2006", "2006-1-2", "20060102",
	"2006-1-2 15:04:05", "2006-1-2 15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00",
	"1/2/2006 15:04:05", "1/2/2006 3:04:05 PM", "1/2/2006 15:04",
}

// parseDate reads a CDC date; the time of day, if any, is dropped.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		if t.Year() < 1900 || t.Year() > 2199 {
			return time.Time{}, fmt.Errorf("date %q out of range", s)
		}
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("unreadable date %q", s)
}
