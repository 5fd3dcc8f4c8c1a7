package codes

import (
	"strings"
	"time"
)

// convert turns one record of the file's kind into a table entry, reporting what is wrong with it.
// A record without its key is skipped; a record with a bad optional value is kept without it.
func (f *cdcFile) convert(r record) {
	switch f.kind {
	case KindCVX:
		f.convertCVX(r)
	case KindMVX:
		f.convertMVX(r)
	case KindProduct:
		f.convertProduct(r)
	case KindVaccineGroup:
		f.convertGroup(r)
	case KindNDCUse, KindNDCSale:
		f.convertNDC(r)
	case KindNDCLinker:
		f.convertLink(r)
	case KindVIS:
		f.convertVIS(r)
	case KindCVXVIS:
		f.convertCVXVIS(r)
	case KindVISURL:
		f.convertVISURL(r)
	case KindCPT:
		f.convertCPT(r)
	}
}

// cvx reads a required CVX code.
func (f *cdcFile) cvx(r record, what string, names ...string) (string, bool) {
	raw := r.get(names...)
	if raw == "" {
		f.problem(r.line, "no %s: record skipped", what)
		return "", false
	}
	c := NormalizeCVX(raw)
	if !allDigits(c) || len(c) > 4 {
		f.problem(r.line, "%s %q is not a CVX code: record skipped", what, raw)
		return "", false
	}
	return c, true
}

// mvx reads an optional MVX code; ok is false if the value is there but is not an MVX code.
func (f *cdcFile) mvx(r record, names ...string) (string, bool) {
	raw := r.get(names...)
	c := NormalizeMVX(raw)
	if c == "" {
		return "", true
	}
	for _, ch := range c {
		if !(ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') || len(c) > 8 {
			f.problem(r.line, "MVX %q is not an MVX code: record skipped", raw)
			return "", false
		}
	}
	return c, true
}

// status reads a required status; an unknown one is kept verbatim and reported.
func (f *cdcFile) status(r record, what string, names ...string) (Status, bool) {
	raw := r.get(names...)
	if raw == "" {
		f.problem(r.line, "no %s: record skipped", what)
		return "", false
	}
	s := parseStatus(raw)
	if !s.Known() {
		f.problem(r.line, "unknown %s %q, kept as is", what, raw)
	}
	return s, true
}

// optStatus reads an optional status.
func (f *cdcFile) optStatus(r record, what string, names ...string) Status {
	if r.get(names...) == "" {
		return ""
	}
	s, _ := f.status(r, what, names...)
	return s
}

// date reads an optional date; a bad one is reported and left out.
func (f *cdcFile) date(r record, what string, names ...string) time.Time {
	raw := r.get(names...)
	if raw == "" {
		return time.Time{}
	}
	t, err := parseDate(raw)
	if err != nil {
		f.problem(r.line, "%s: %v, left out", what, err)
	}
	return t
}

func (f *cdcFile) convertCVX(r record) {
	code, ok := f.cvx(r, "CVX code", "cvxcode", "cvx")
	if !ok {
		return
	}
	st, ok := f.status(r, "status", "status")
	if !ok {
		return
	}
	v := vaccineRec{
		CVX:       code,
		ShortName: r.get("shortdescription", "cvxshortdescription"),
		FullName:  r.get("fullvaccinename", "fullname"),
		Status:    st,
		Updated:   f.date(r, "last updated", "lastupdated", "lastupdateddate"),
	}
	if raw := r.get("nonvaccine", "isnonvaccine"); raw != "" {
		if nv, ok := parseBool(raw); ok {
			v.NonVaccine, v.NonVaccineKnown = nv, true
		} else {
			f.problem(r.line, "non-vaccine flag %q is not True or False, left out", raw)
		}
	}
	f.sawDate(v.Updated)
	f.vaccines = append(f.vaccines, v)
	f.records++
}

func (f *cdcFile) convertMVX(r record) {
	code, ok := f.mvx(r, "mvxcode", "mvx")
	if !ok {
		return
	}
	if code == "" {
		f.problem(r.line, "no MVX code: record skipped")
		return
	}
	st, ok := f.status(r, "status", "status")
	if !ok {
		return
	}
	m := Manufacturer{
		MVX:     code,
		Name:    r.get("manufacturername", "manufacturer"),
		Status:  st,
		Updated: f.date(r, "last updated", "lastupdated", "lastupdateddate"),
	}
	f.sawDate(m.Updated)
	f.mfrs = append(f.mfrs, m)
	f.records++
}

func (f *cdcFile) convertProduct(r record) {
	name := r.get("cdcproductname", "productname")
	if name == "" {
		f.problem(r.line, "no product name: record skipped")
		return
	}
	cvx, ok := f.cvx(r, "CVX code", "cvxcode")
	if !ok {
		return
	}
	mvx, ok := f.mvx(r, "mvxcode")
	if !ok {
		return
	}
	st, ok := f.status(r, "product name status", "productnamestatus", "productstatus", "status")
	if !ok {
		return
	}
	p := Product{
		Name:      name,
		CVX:       cvx,
		MVX:       mvx,
		MVXStatus: f.optStatus(r, "MVX status", "mvxstatus"),
		Status:    st,
		Updated:   f.date(r, "last updated", "lastupdated", "lastupdateddate"),
	}
	f.sawDate(p.Updated)
	f.products = append(f.products, p)
	f.records++
}

func (f *cdcFile) convertGroup(r record) {
	cvx, ok := f.cvx(r, "CVX code", "cvxcode")
	if !ok {
		return
	}
	g := r.get("vaccinegroupname")
	if g == "" {
		f.problem(r.line, "no vaccine group name: record skipped")
		return
	}
	var gcvx string
	if raw := r.get("cvxforvaccinegroup"); raw != "" {
		if gcvx, ok = f.cvx(r, "CVX for vaccine group", "cvxforvaccinegroup"); !ok {
			return
		}
	}
	f.groups = append(f.groups, groupRow{cvx: cvx, group: g, groupCVX: gcvx})
	f.records++
}

func (f *cdcFile) convertNDC(r record) {
	kind := NDCUnitOfUse
	if f.kind == KindNDCSale {
		kind = NDCUnitOfSale
	}
	// The NDC11 column is the canonical one. Without it, the labeler, product and package
	// columns say the same, written without their leading zeros (0006|4045|00, 50090|7541|0).
	raw := r.get("ndc11", "ndc")
	ndc, ok := NormalizeNDC(raw)
	if raw == "" {
		ndc, ok = ndcFromSegments(r.get("labeler"), r.get("product"), r.get("package"))
	}
	if !ok {
		f.problem(r.line, "NDC %q is not an NDC: record skipped", raw)
		return
	}
	cvx, ok := f.cvx(r, "CVX code", "cvxcode")
	if !ok {
		return
	}
	e := NDCCode{
		NDC:     ndc,
		Kind:    kind,
		CVX:     cvx,
		Name:    r.get("proprietaryname"),
		Labeler: r.get("labelername"),
		Start:   f.date(r, "start date", "startdate"),
		End:     f.date(r, "end date", "enddate"),
		Updated: f.date(r, "last updated", "lastupdated"),
	}
	f.sawDate(e.Updated)
	f.ndcRows = append(f.ndcRows, ndcRow{id: r.get("id"), line: r.line, entry: e})
	f.records++
}

// ndcFromSegments rebuilds the 5-4-2 NDC from the labeler, product and package columns of the CDC
// NDC tables, which drop leading zeros.
func ndcFromSegments(lab, prod, pkg string) (string, bool) {
	if lab == "" || prod == "" || pkg == "" || !allDigits(lab+prod+pkg) ||
		len(lab) > 5 || len(prod) > 4 || len(pkg) > 2 {
		return "", false
	}
	pad := func(s string, n int) string { return strings.Repeat("0", n-len(s)) + s }
	return pad(lab, 5) + "-" + pad(prod, 4) + "-" + pad(pkg, 2), true
}

func (f *cdcFile) convertLink(r record) {
	sale, use := r.get("saleid"), r.get("useid")
	if !isID(sale) || !isID(use) {
		f.problem(r.line, "link %q → %q is not a pair of CDC NDC row ids: record skipped", sale, use)
		return
	}
	mvx, ok := f.mvx(r, "mvxcode")
	if !ok {
		return
	}
	f.links = append(f.links, ndcLink{saleID: sale, useID: use, mvx: mvx, line: r.line})
	f.records++
}

func (f *cdcFile) convertVIS(r record) {
	doc := r.get("visencodedstring")
	if doc == "" {
		f.problem(r.line, "no VIS encoded string: record skipped")
		return
	}
	v := VIS{
		Document: doc,
		GDTI:     r.get("visgdtidocumentcode"),
		Name:     r.get("visdocumenttypedescription"),
		Edition:  f.date(r, "edition date", "editiondate"),
		Status:   r.get("status"),
		Updated:  f.date(r, "last updated", "lastupdated"),
	}
	f.sawDate(v.Updated)
	f.vis = append(f.vis, v)
	f.records++
}

func (f *cdcFile) convertCVXVIS(r record) {
	cvx, ok := f.cvx(r, "CVX code", "cvxcode")
	if !ok {
		return
	}
	doc := r.get("fullyencodedstring")
	if doc == "" {
		f.problem(r.line, "no VIS encoded string: record skipped")
		return
	}
	v := VIS{
		Document: doc,
		Name:     r.get("visdocumentname"),
		Edition:  f.date(r, "VIS edition date", "viseditiondate"),
		Status:   r.get("status"),
	}
	f.sawDate(v.Edition)
	f.cvxVIS = append(f.cvxVIS, cvxVISRow{cvx: cvx, vis: v})
	f.records++
}

func (f *cdcFile) convertVISURL(r record) {
	gdti := r.get("visgdtidocumentconceptcode")
	if gdti == "" {
		f.problem(r.line, "no VIS GDTI code: record skipped")
		return
	}
	f.visURLs = append(f.visURLs, visURL{
		GDTI: gdti,
		Name: r.get("visdocumenttypedescriptionconceptname"),
		PDF:  r.get("vispdfurl"),
		HTML: r.get("vishtmlurl"),
	})
	f.records++
}

func (f *cdcFile) convertCPT(r record) {
	cpt := strings.ToUpper(r.get("cptcode"))
	if cpt == "" {
		f.problem(r.line, "no CPT code: record skipped")
		return
	}
	cvx, ok := f.cvx(r, "CVX code", "cvxcode")
	if !ok {
		return
	}
	c := CPTCode{
		CPT:         cpt,
		CVX:         cvx,
		Description: r.get("cptdesc", "cptdescription"),
		Updated:     f.date(r, "last updated", "lastupdated"),
	}
	f.sawDate(c.Updated)
	f.cpt = append(f.cpt, c)
	f.records++
}
