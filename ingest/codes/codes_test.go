package codes_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// sharedCodes is the CDC download the snapshot is generated from, beside the project checkout.
const sharedCodes = "../../../shared/codes"

// The counts of the embedded snapshot. They change when the snapshot is regenerated from newer CDC
// files: update them together with snapshot.dat.
func TestDefaultCounts(t *testing.T) {
	st := codes.Default().Stats()
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"vaccines", st.Vaccines, 288},
		{"active vaccines", st.VaccinesByStatus[codes.StatusActive], 113},
		{"inactive vaccines", st.VaccinesByStatus[codes.StatusInactive], 118},
		{"never active vaccines", st.VaccinesByStatus[codes.StatusNeverActive], 18},
		{"non-US vaccines", st.VaccinesByStatus[codes.StatusNonUS], 39},
		{"manufacturers", st.Manufacturers, 89},
		{"products", st.Products, 222},
		{"product pairs", st.ProductPairs, 201},
		{"vaccine groups", st.Groups, 38},
		{"NDCs", st.NDCs, 1000},
		{"NDC entries", st.NDCEntries, 1077},
		{"VIS editions", st.VIS, 174},
		{"CVX-VIS links", st.CVXVIS, 548},
		{"CPT codes", st.CPT, 158},
		{"sources", len(st.Sources), 17},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	if want := time.Date(2025, 11, 19, 0, 0, 0, 0, time.UTC); !st.Newest.Equal(want) {
		t.Errorf("newest source date %v, want %v", st.Newest, want)
	}
	if n := len(mustSnapshot(t)); n > 512<<10 {
		t.Errorf("snapshot is %d bytes: keep it well under 1 MB", n)
	}
}

func mustSnapshot(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("snapshot.dat")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDefaultVaccines(t *testing.T) {
	set := codes.Default()
	for _, c := range []struct {
		code       string
		cvx        string
		short      string
		status     codes.Status
		nonVaccine bool
		group      string // one of its groups, if any
	}{
		{"08", "08", "Hep B, adolescent or pediatric", codes.StatusActive, false, "HepB"},
		{"8", "08", "Hep B, adolescent or pediatric", codes.StatusActive, false, "HepB"},
		{"008", "08", "Hep B, adolescent or pediatric", codes.StatusActive, false, "HepB"},
		{" 08       ", "08", "Hep B, adolescent or pediatric", codes.StatusActive, false, "HepB"},
		{"140", "140", "Influenza, split virus, trivalent, PF", codes.StatusActive, false, "FLU"},
		{"0140", "140", "Influenza, split virus, trivalent, PF", codes.StatusActive, false, "FLU"},
		{"998", "998", "no vaccine administered", codes.StatusInactive, true, ""},
		{"28", "28", "DT (pediatric)", codes.StatusInactive, false, "DTAP"}, // retired 2023; cvx.txt still said Active
		{"57", "57", "hantavirus", codes.StatusNeverActive, false, ""},
		{"102", "102", "DTP-Hib-Hep B", codes.StatusNonUS, false, "HIB"},
		{"03", "03", "MMR", codes.StatusActive, false, "MMR"},
		{"1", "01", "DTP", codes.StatusInactive, false, "DTAP"},
		{"12", "12", "diphtheria antitoxin", codes.StatusActive, true, ""},
		{"334", "334", "", codes.StatusActive, false, "COVID-19"}, // only in the 2025 XML
	} {
		v, ok := set.Vaccine(c.code)
		if !ok {
			t.Errorf("Vaccine(%q): not found", c.code)
			continue
		}
		if v.CVX != c.cvx || (c.short != "" && v.ShortName != c.short) || v.Status != c.status || v.NonVaccine != c.nonVaccine {
			t.Errorf("Vaccine(%q) = %+v, want CVX %s %q %s non-vaccine %v", c.code, v, c.cvx, c.short, c.status, c.nonVaccine)
		}
		if c.group != "" && !slices.Contains(v.Groups, c.group) {
			t.Errorf("Vaccine(%q).Groups = %v, want %s among them", c.code, v.Groups, c.group)
		}
		if v.FullName == "" || v.Updated.IsZero() {
			t.Errorf("Vaccine(%q) = %+v: no full name or date", c.code, v)
		}
	}
	for _, code := range []string{"", "0", "00", "abc", "9999", "08x", "-8", "8.0"} {
		if v, ok := set.Vaccine(code); ok {
			t.Errorf("Vaccine(%q) = %+v, want not found", code, v)
		}
	}
}

func TestDefaultManufacturers(t *testing.T) {
	set := codes.Default()
	for _, c := range []struct {
		code, mvx, name string
		status          codes.Status
	}{
		{"CSL", "CSL", "bioCSL", codes.StatusInactive},
		{"PMC", "PMC", "Sanofi Pasteur", codes.StatusActive},
		{"pmc", "PMC", "Sanofi Pasteur", codes.StatusActive},
		{" Msd ", "MSD", "Merck and Co., Inc.", codes.StatusActive},
		{"SKB", "SKB", "GlaxoSmithKline", codes.StatusActive},
		{"PFR", "PFR", "Pfizer, Inc", codes.StatusActive},
		{"VBI", "VBI", "VBI Vaccines, Inc", codes.StatusInactive}, // mvx.txt still said Active
	} {
		m, ok := set.Manufacturer(c.code)
		if !ok || m.MVX != c.mvx || m.Name != c.name || m.Status != c.status {
			t.Errorf("Manufacturer(%q) = %+v, %v; want %s %q %s", c.code, m, ok, c.mvx, c.name, c.status)
		}
	}
	if _, ok := set.Manufacturer("XYZ"); ok {
		t.Error("Manufacturer(XYZ) found")
	}
}

func TestDefaultProducts(t *testing.T) {
	set := codes.Default()
	for _, c := range []struct {
		cvx, mvx string
		want     bool
	}{
		{"140", "CSL", true}, // Afluria, preservative free (bioCSL): inactive, but a real pair
		{"140", "csl", true},
		{"140", "SEQ", true},
		{"140", "PMC", true},
		{"140", "MSD", false},
		{"08", "MSD", true},
		{"8", "SKB", true},
		{"08", "PFR", false},
		{"62", "MSD", true},
		{"20", "", true}, // ACEL-IMUNE: listed without a manufacturer
		{"999", "MSD", false},
	} {
		if got := set.IsProduct(c.cvx, c.mvx); got != c.want {
			t.Errorf("IsProduct(%q, %q) = %v, want %v", c.cvx, c.mvx, got, c.want)
		}
	}

	ps := set.Products("140")
	if len(ps) != 12 {
		t.Fatalf("Products(140): %d products, want 12: %+v", len(ps), ps)
	}
	// Active products first.
	if ps[0].Status != codes.StatusActive || ps[len(ps)-1].Status != codes.StatusInactive {
		t.Errorf("Products(140) not active first: %+v", ps)
	}
	var afluria codes.Product
	for _, p := range ps {
		if p.MVX == "CSL" {
			afluria = p
		}
	}
	want := codes.Product{Name: "Afluria, preservative free", CVX: "140", MVX: "CSL",
		MVXStatus: codes.StatusInactive, Status: codes.StatusInactive, Updated: time.Date(2022, 12, 15, 0, 0, 0, 0, time.UTC)}
	if afluria != want {
		t.Errorf("140/CSL product = %+v, want %+v", afluria, want)
	}
	// Callers own what they get.
	ps[0].Name = "changed"
	if set.Products("140")[0].Name == "changed" {
		t.Error("Products returns the set's own slice")
	}
}

func TestDefaultNDC(t *testing.T) {
	set := codes.Default()
	for _, c := range []struct {
		code          string
		ndc, cvx, mvx string
		kind          codes.NDCKind
	}{
		{"49281-0425-50", "49281-0425-50", "140", "PMC", codes.NDCUnitOfSale},
		{"49281042550", "49281-0425-50", "140", "PMC", codes.NDCUnitOfSale},
		{"49281-425-50", "49281-0425-50", "140", "PMC", codes.NDCUnitOfSale}, // 5-3-2
		{"4928142550", "49281-0425-50", "140", "PMC", codes.NDCUnitOfSale},   // 10 digits, one reading exists
		{" 49281-0425-50 ", "49281-0425-50", "140", "PMC", codes.NDCUnitOfSale},
		{"0006-4045-00", "00006-4045-00", "62", "MSD", codes.NDCUnitOfSale}, // 4-4-2
		{"00006404500", "00006-4045-00", "62", "MSD", codes.NDCUnitOfSale},
		{"50090-7541-0", "50090-7541-00", "110", "SKB", codes.NDCUnitOfSale}, // 5-4-1
		{"49281-0521-00", "49281-0521-00", "161", "PMC", codes.NDCUnitOfUse},
		{"58160-0821-05", "58160-0821-05", "43", "SKB", codes.NDCUnitOfUse},   // also 44: 43 is primary
		{"51285-0138-50", "51285-0138-50", "143", "TVA", codes.NDCUnitOfSale}, // BRR (inactive) and TVA
		{"66521-0114-02", "66521-0114-02", "140", "SEQ", codes.NDCUnitOfUse},  // NOV (inactive) and SEQ
	} {
		e, ok := set.NDC(c.code)
		if !ok || e.NDC != c.ndc || e.CVX != c.cvx || e.MVX != c.mvx || e.Kind != c.kind {
			t.Errorf("NDC(%q) = %+v, %v; want %s %s CVX %s MVX %s", c.code, e, ok, c.ndc, c.kind, c.cvx, c.mvx)
		}
	}
	if es := set.NDCs("58160082105"); len(es) != 2 || es[0].CVX != "43" || es[1].CVX != "44" {
		t.Errorf("NDCs(58160082105) = %+v, want CVX 43 then 44", es)
	}
	e, _ := set.NDC("49281-0425-50")
	if e.Name != "FLUZONE TRIVALENT NORTHERN HEMISPHERE" || e.Labeler != "Sanofi Pasteur Inc." ||
		!e.Start.Equal(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)) || !e.End.IsZero() {
		t.Errorf("NDC 49281-0425-50 = %+v", e)
	}
	for _, code := range []string{"", "49281", "49281-0425", "4928-0425-5", "49281-0425-50-1", "abcde-0425-50", "99999-9999-99"} {
		if e, ok := set.NDC(code); ok {
			t.Errorf("NDC(%q) = %+v, want not found", code, e)
		}
	}
}

func TestDefaultGroupsVISCPT(t *testing.T) {
	set := codes.Default()
	g, ok := set.Group("hepb")
	if !ok || g != (codes.VaccineGroup{Name: "HepB", CVX: "45"}) {
		t.Errorf("Group(hepb) = %+v, %v", g, ok)
	}
	if m := set.GroupMembers("HepB"); !slices.Contains(m, "08") || !slices.Contains(m, "43") || !slices.IsSortedFunc(m, cmpCode) {
		t.Errorf("GroupMembers(HepB) = %v", m)
	}
	if n := len(set.Groups()); n != 38 {
		t.Errorf("Groups(): %d", n)
	}

	v, ok := set.VIS("253088698300001111200108")
	if !ok || v.Name != "Adenovirus Vaccine VIS" || v.GDTI != "0886983000011" || v.Status != "Current" ||
		!v.Edition.Equal(time.Date(2020, 1, 8, 0, 0, 0, 0, time.UTC)) || !strings.HasSuffix(v.PDFURL, "/adenovirus.pdf") {
		t.Errorf("VIS(adenovirus 2020) = %+v, %v", v, ok)
	}
	vs := set.VISForCVX("143")
	if len(vs) != 3 || vs[0].Document != "253088698300001111200108" {
		t.Errorf("VISForCVX(143) = %+v, want 3 editions, newest first", vs)
	}

	cpt := set.CPT("90281")
	if len(cpt) != 1 || cpt[0].CVX != "86" {
		t.Errorf("CPT(90281) = %+v", cpt)
	}
	if cpt := set.CPT("90581"); len(cpt) != 2 {
		t.Errorf("CPT(90581) = %+v, want two CVX codes", cpt)
	}
}

// cmpCode orders CVX codes numerically.
func cmpCode(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// TestSnapshotUpToDate regenerates the snapshot from the CDC files and compares: it fails when
// someone changed the CDC files or the parser and forgot `go generate ./ingest/codes`.
func TestSnapshotUpToDate(t *testing.T) {
	if _, err := os.Stat(sharedCodes); errors.Is(err, os.ErrNotExist) {
		t.Skipf("CDC code files not found at %s (the shared directory beside the checkout): cannot check the snapshot is current", sharedCodes)
	}
	set, rep, err := codes.ImportDir(nil, sharedCodes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := set.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := mustSnapshot(t)
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Fatalf("snapshot.dat is stale: run `go generate ./ingest/codes`.\nline %d:\n regenerated: %q\n snapshot.dat: %q\nimport:\n%s", i+1, gl[i], wl[i], rep)
		}
	}
	t.Fatalf("snapshot.dat is stale (%d lines, regenerated %d): run `go generate ./ingest/codes`", len(wl), len(gl))
}

func TestDefaultIsParsedOnce(t *testing.T) {
	if codes.Default() != codes.Default() {
		t.Error("Default returns different sets")
	}
}
