package codes_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// importFixture imports the small CDC download under testdata/cdc.
func importFixture(t *testing.T) (*codes.Set, codes.ImportReport) {
	t.Helper()
	set, rep, err := codes.ImportDir(nil, "testdata/cdc")
	if err != nil {
		t.Fatal(err)
	}
	return set, rep
}

func fileReport(t *testing.T, rep codes.ImportReport, name string) codes.FileReport {
	t.Helper()
	for _, f := range rep.Files {
		if filepath.Base(f.Name) == name {
			return f
		}
	}
	t.Fatalf("no report for %s in %+v", name, rep.Files)
	return codes.FileReport{}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		file   string
		kind   codes.Kind
		format codes.Format
	}{
		{"cdc/cvx.txt", codes.KindCVX, codes.FormatPipe},
		{"cdc/mvx_from_cdc_xml.txt", codes.KindMVX, codes.FormatTable},
		{"cdc/tradename.xml", codes.KindProduct, codes.FormatXML},
		{"cdc/cvx_vaccine_group_from_cdc_xml.txt", codes.KindVaccineGroup, codes.FormatTable},
		{"cdc/NDC_Unit_sale.txt", codes.KindNDCSale, codes.FormatPipe},
		{"cdc/NDC_Unit_use.txt", codes.KindNDCUse, codes.FormatPipe},
		{"cdc/NDC_Linker.txt", codes.KindNDCLinker, codes.FormatPipe},
		{"cdc/vis.xml", codes.KindVIS, codes.FormatXML},
		{"cdc/cvxvis.xml", codes.KindCVXVIS, codes.FormatXML},
		{"cdc/visurl.xml", codes.KindVISURL, codes.FormatXML},
		{"cdc/cpt.xml", codes.KindCPT, codes.FormatXML},
		{"newer/cvx.xml", codes.KindCVX, codes.FormatXML},
		{"newer/mvx.txt", codes.KindMVX, codes.FormatPipe},
		{"formats/cvx_from_cdc_xml.txt", codes.KindCVX, codes.FormatTable},
		{"formats/cvx_utf16.xml", codes.KindCVX, codes.FormatXML},
		{"formats/cvx_cr.txt", codes.KindCVX, codes.FormatPipe},
		{"formats/mvx.txt", codes.KindMVX, codes.FormatPipe},
		{"formats/mvx.xml", codes.KindMVX, codes.FormatXML},
		{"formats/tradename.txt", codes.KindProduct, codes.FormatPipe},
		{"formats/tradename_cvx_mvx_from_cdc_xml.txt", codes.KindProduct, codes.FormatTable},
		{"formats/vac2vg.xml", codes.KindVaccineGroup, codes.FormatXML},
		{"formats/vaccine_group.txt", codes.KindVaccineGroup, codes.FormatPipe},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		kind, format, err := codes.Detect(data)
		if err != nil || kind != c.kind || format != c.format {
			t.Errorf("Detect(%s) = %s, %s, %v; want %s, %s", c.file, kind, format, err, c.kind, c.format)
		}
	}
	for _, file := range []string{"bad/notes.txt", "bad/codeset.xml", "bad/empty.txt", "cdc/README"} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := codes.Detect(data); !errors.Is(err, codes.ErrUnrecognized) {
			t.Errorf("Detect(%s): %v, want ErrUnrecognized", file, err)
		}
	}
}

// Shared CDC files are recognised by content whatever their names.
func TestDetectShared(t *testing.T) {
	if _, err := os.Stat(sharedCodes); err != nil {
		t.Skipf("CDC code files not found at %s: %v", sharedCodes, err)
	}
	for file, kind := range map[string]codes.Kind{
		"cvx.txt": codes.KindCVX, "cvx.xml": codes.KindCVX, "cvx_from_cdc_xml.txt": codes.KindCVX,
		"mvx.txt": codes.KindMVX, "mvx.xml": codes.KindMVX, "mvx_from_cdc_xml.txt": codes.KindMVX,
		"tradename.xml": codes.KindProduct, "tradename_cvx_mvx_from_cdc_xml.txt": codes.KindProduct,
		"vac2vg.xml": codes.KindVaccineGroup, "cvx_vaccine_group_from_cdc_xml.txt": codes.KindVaccineGroup,
		"NDC_Unit_use.txt": codes.KindNDCUse, "NDC_Unit_sale.txt": codes.KindNDCSale, "NDC_Linker.txt": codes.KindNDCLinker,
		"vis.xml": codes.KindVIS, "cvxvis.xml": codes.KindCVXVIS, "visurl.xml": codes.KindVISURL, "cpt.xml": codes.KindCPT,
	} {
		data, err := os.ReadFile(filepath.Join(sharedCodes, file))
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := codes.Detect(data); got != kind {
			t.Errorf("Detect(%s) = %q, %v; want %s", file, got, err, kind)
		}
	}
}

func TestImportFixture(t *testing.T) {
	set, rep := importFixture(t)

	// Every file, and the lines that were skipped, with their line numbers.
	for _, c := range []struct {
		file     string
		records  int
		problems []int // lines
	}{
		{"cvx.txt", 12, []int{12}},
		{"mvx_from_cdc_xml.txt", 7, nil},
		{"tradename.xml", 8, nil},
		{"cvx_vaccine_group_from_cdc_xml.txt", 9, nil},
		{"NDC_Unit_sale.txt", 5, []int{5, 6}}, // 5: no linker entry; 6: not an NDC
		{"NDC_Unit_use.txt", 5, nil},
		{"NDC_Linker.txt", 6, []int{6}}, // links rows that are not there
		{"vis.xml", 3, nil},
		{"cvxvis.xml", 4, nil},
		{"visurl.xml", 1, nil},
		{"cpt.xml", 4, nil},
	} {
		f := fileReport(t, rep, c.file)
		var lines []int
		for _, p := range f.Problems {
			lines = append(lines, p.Line)
			if !strings.Contains(p.Error(), c.file+":") {
				t.Errorf("%s: problem %q does not name the file and line", c.file, p)
			}
		}
		if f.Records != c.records || !equalInts(lines, c.problems) {
			t.Errorf("%s: %d records, problems on lines %v; want %d, %v (%v)", c.file, f.Records, lines, c.records, c.problems, f.Problems)
		}
	}
	if f := fileReport(t, rep, "README"); f.Ignored == "" {
		t.Errorf("README not reported as ignored: %+v", f)
	}
	if len(rep.Warnings) == 0 || !strings.Contains(strings.Join(rep.Warnings, "\n"), `product "ACEL-IMUNE": unknown CVX 20`) {
		t.Errorf("warnings = %q", rep.Warnings)
	}

	v, _ := set.Vaccine("306")
	if v.FullName != "Respiratory syncytial virus (RSV) monoclonal antibody, IgG1κ, 0.5 mL" || !v.NonVaccine {
		t.Errorf("306 = %+v", v)
	}
	if v, _ := set.Vaccine("140"); v.FullName != "Influenza, split virus, trivalent, injectable, preservative free" {
		t.Errorf("140 (a note with a '|' in cvx.txt) = %+v", v)
	}
	if v, _ := set.Vaccine("102"); v.Status != codes.StatusNonUS || len(v.Groups) != 3 {
		t.Errorf("102 = %+v", v)
	}
	if m, ok := set.Manufacturer("csl"); !ok || m.Name != "bioCSL" || m.Updated != day(2016, 9, 26) {
		t.Errorf("CSL (from a BOM+CRLF table) = %+v", m)
	}
	if !set.IsProduct("140", "CSL") || !set.IsProduct("8", "skb") || set.IsProduct("43", "MSD") {
		t.Error("IsProduct")
	}

	for _, c := range []struct{ code, ndc, cvx, mvx string }{
		{"49281-0425-50", "49281-0425-50", "140", "PMC"},
		{"49281042588", "49281-0425-88", "140", "PMC"},
		{"0006-4045-00", "00006-4045-00", "62", "MSD"},
		{"50090-7541-0", "50090-7541-00", "110", ""}, // NDC from the segments; no linker entry
		{"51285-0174-02", "51285-0174-02", "143", "BRR"},
	} {
		if e, ok := set.NDC(c.code); !ok || e.NDC != c.ndc || e.CVX != c.cvx || e.MVX != c.mvx {
			t.Errorf("NDC(%s) = %+v, %v; want %s CVX %s MVX %s", c.code, e, ok, c.ndc, c.cvx, c.mvx)
		}
	}
	if es := set.NDCs("58160-0821-11"); len(es) != 2 {
		t.Errorf("NDCs(Engerix-B sale) = %+v", es)
	}
	if _, ok := set.NDC("49281-0999-10"); ok {
		t.Error("the row with a malformed NDC was imported")
	}

	vs := set.VISForCVX("08")
	if len(vs) != 2 || vs[0].Status != "Current" || vs[0].GDTI != "0886983000066" || vs[0].HTMLURL == "" || vs[0].Updated != day(2023, 5, 12) {
		t.Errorf("VISForCVX(08) = %+v", vs)
	}
	if c := set.CPT(" 90744 "); len(c) != 1 || c[0].CVX != "08" {
		t.Errorf("CPT(90744) = %+v", c)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A newer download overlays the base: newer records replace, older ones are ignored, what the new
// files do not mention stays, and the base set is not changed.
func TestImportOverlay(t *testing.T) {
	base, _ := importFixture(t)
	baseBytes, _ := base.MarshalBinary()

	set, rep, err := codes.Import(base, "testdata/newer/cvx.xml", "testdata/newer/mvx.txt", "testdata/newer/NDC_Unit_sale.txt")
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		file                             string
		added, updated, unchanged, stale int
	}{
		{"cvx.xml", 1, 2, 1, 1},
		{"mvx.txt", 1, 1, 0, 1},
		{"NDC_Unit_sale.txt", 1, 1, 0, 1},
	} {
		f := fileReport(t, rep, c.file)
		if f.Added != c.added || f.Updated != c.updated || f.Unchanged != c.unchanged || f.Stale != c.stale {
			t.Errorf("%s: %+v; want %d added, %d updated, %d unchanged, %d stale", c.file, f, c.added, c.updated, c.unchanged, c.stale)
		}
	}

	for _, c := range []struct {
		cvx, short, full string
		status           codes.Status
		nonVaccine       bool
		updated          time.Time
	}{
		// retired by the newer file
		{"28", "DT (pediatric)", "diphtheria and tetanus toxoids, adsorbed for pediatric use", codes.StatusInactive, false, day(2024, 12, 6)},
		// renamed; the file is Latin-1; the XML has no non-vaccine flag and cvx.txt's is kept
		{"08", "Hep B, adolescent or pediatric", "hepatitis B vaccine, pédiatric or pediatric/adolescent dosage", codes.StatusActive, false, day(2024, 12, 16)},
		{"998", "no vaccine administered", "no vaccine administered", codes.StatusInactive, true, day(2023, 3, 9)},
		// the newer file's record is older than the base's: ignored
		{"140", "Influenza, split virus, trivalent, PF", "Influenza, split virus, trivalent, injectable, preservative free", codes.StatusActive, false, day(2024, 5, 2)},
		// new
		{"325", "Orthopoxvirus, unspecified", "Orthopoxvirus vaccine, unspecified", codes.StatusInactive, false, day(2025, 11, 19)},
		// not in the newer file: kept
		{"57", "hantavirus", "hantavirus vaccine", codes.StatusNeverActive, false, day(2020, 9, 9)},
	} {
		v, ok := set.Vaccine(c.cvx)
		if !ok || v.ShortName != c.short || v.FullName != c.full || v.Status != c.status || v.NonVaccine != c.nonVaccine || v.Updated != c.updated {
			t.Errorf("Vaccine(%s) = %+v, %v; want %q %q %s non-vaccine %v %v", c.cvx, v, ok, c.short, c.full, c.status, c.nonVaccine, c.updated)
		}
	}
	if v, _ := set.Vaccine("08"); len(v.Groups) != 1 || v.Groups[0] != "HepB" {
		t.Errorf("08 lost its group: %+v", v)
	}

	for _, c := range []struct {
		mvx, name string
		status    codes.Status
	}{
		{"SEQ", "Seqirus USA Inc’s vaccines", codes.StatusActive}, // Windows-1252 ’
		{"CSL", "bioCSL", codes.StatusInactive},                   // stale record ignored
		{"VBI", "VBI Vaccines, Inc", codes.StatusInactive},        // new
		{"PMC", "Sanofi Pasteur", codes.StatusActive},             // kept
	} {
		if m, ok := set.Manufacturer(c.mvx); !ok || m.Name != c.name || m.Status != c.status {
			t.Errorf("Manufacturer(%s) = %+v, %v; want %q %s", c.mvx, m, ok, c.name, c.status)
		}
	}

	// Without a linker in the import, an NDC keeps the manufacturer it had.
	if e, _ := set.NDC("49281-0425-50"); e.Name != "FLUZONE TRIVALENT NH 2025-2026" || e.MVX != "PMC" || e.End != day(2026, 6, 30) {
		t.Errorf("NDC 49281-0425-50 = %+v", e)
	}
	if e, ok := set.NDC("49281-0643-15"); !ok || e.CVX != "141" || e.MVX != "" {
		t.Errorf("new NDC 49281-0643-15 = %+v, %v", e, ok)
	}
	if e, _ := set.NDC("00006-4045-00"); e.Updated != day(2022, 7, 5) {
		t.Errorf("stale NDC row applied: %+v", e)
	}
	if e, _ := set.NDC("49281-0425-88"); e.MVX != "PMC" { // the unit of use is not in the import: kept
		t.Errorf("unit-of-use NDC lost: %+v", e)
	}

	if rep.Before.Vaccines != 12 || rep.After.Vaccines != 13 || rep.After.Manufacturers != 8 {
		t.Errorf("report counts: before %d, after %d CVX, %d MVX", rep.Before.Vaccines, rep.After.Vaccines, rep.After.Manufacturers)
	}
	var sawXML bool
	for _, s := range set.Stats().Sources {
		if s.Kind == codes.KindCVX && s.Format == codes.FormatXML && s.File == "cvx.xml" && s.Newest == day(2025, 11, 19) {
			sawXML = true
		}
	}
	if !sawXML {
		t.Errorf("sources: %+v", set.Stats().Sources)
	}

	// The base is unchanged.
	if v, _ := base.Vaccine("28"); v.Status != codes.StatusActive {
		t.Errorf("base changed: 28 = %+v", v)
	}
	if after, _ := base.MarshalBinary(); !bytes.Equal(after, baseBytes) {
		t.Error("base set changed by Import")
	}

	// Importing the same files again changes nothing.
	again, rep2, err := codes.Import(set, "testdata/newer/cvx.xml", "testdata/newer/mvx.txt")
	if err != nil {
		t.Fatal(err)
	}
	if f := fileReport(t, rep2, "cvx.xml"); f.Added+f.Updated != 0 {
		t.Errorf("re-import: %+v", f)
	}
	a, _ := set.MarshalBinary()
	b, _ := again.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Error("re-importing the same files changed the set")
	}
}

// The same content in the encodings and line ends CDC files come in gives the same set.
func TestImportEncodings(t *testing.T) {
	const text = "08        |Hep B, pédiatric|hepatitis B vaccine, “pediatric”||Active|False|2018/05/10\n" +
		"57        |hantavirus|hantavirus vaccine||Never Active|False|2020/09/09\n"
	cp1252, err := charmap.Windows1252.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	utf16le := func(s string, bom bool) string {
		var b []byte
		if bom {
			b = append(b, 0xFF, 0xFE)
		}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return string(b)
	}
	utf16be := func(s string) string {
		b := []byte{0xFE, 0xFF}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return string(b)
	}
	variants := map[string]string{
		"utf8":      text,
		"bom-crlf":  "\ufeff" + strings.ReplaceAll(text, "\n", "\r\n"),
		"cr":        strings.ReplaceAll(text, "\n", "\r"),
		"cp1252":    cp1252,
		"utf16le":   utf16le(text, true),
		"utf16be":   utf16be(text),
		"no-eol":    strings.TrimSuffix(text, "\n"),
		"blank-end": text + "\n\n   \n",
	}
	for name, content := range variants {
		set, rep, err := codes.ImportReaders(nil, map[string]io.Reader{"cvx-" + name: strings.NewReader(content)})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		v, _ := set.Vaccine("8")
		if v.ShortName != "Hep B, pédiatric" || v.FullName != "hepatitis B vaccine, “pediatric”" || set.Stats().Vaccines != 2 {
			t.Errorf("%s: 08 = %+v (%s)", name, v, rep)
		}
	}
}

func TestImportErrors(t *testing.T) {
	linker, err := os.ReadFile("testdata/cdc/NDC_Linker.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		paths   []string
		readers map[string]io.Reader
		is      error
		says    string
	}{
		{name: "unrecognised text", paths: []string{"testdata/cdc/cvx.txt", "testdata/bad/notes.txt"}, is: codes.ErrUnrecognized, says: "bad/notes.txt"},
		{name: "AIRA codebase", paths: []string{"testdata/bad/codeset.xml"}, is: codes.ErrUnrecognized, says: "AIRA"},
		{name: "empty", paths: []string{"testdata/bad/empty.txt"}, is: codes.ErrUnrecognized, says: "empty.txt"},
		{name: "truncated XML", paths: []string{"testdata/bad/truncated.xml"}, says: "truncated.xml:9: XML"},
		{name: "no usable record", paths: []string{"testdata/bad/allbad_cvx.txt"}, says: `allbad_cvx.txt:2: no usable cvx record (first problem: CVX code "abc" is not a CVX code`},
		{name: "missing file", paths: []string{"testdata/nonexistent.txt"}, is: os.ErrNotExist},
		{name: "no files", says: "no files"},
		{name: "linker alone", readers: map[string]io.Reader{"links.txt": bytes.NewReader(linker)}, says: "links.txt: an NDC linker"},
		{name: "nil reader", readers: map[string]io.Reader{"upload": nil}, says: "upload: no content"},
		{name: "failing reader", readers: map[string]io.Reader{"upload": io.MultiReader(strings.NewReader("08|"), errReader{})}, says: "upload: read: boom"},
	} {
		var err error
		if c.readers != nil {
			_, _, err = codes.ImportReaders(codes.Default(), c.readers)
		} else {
			_, _, err = codes.Import(codes.Default(), c.paths...)
		}
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v, want %v", c.name, err, c.is)
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.says)
		}
	}

	// A recognised file that cannot be used fails a directory import too.
	if _, _, err := codes.ImportDir(nil, "testdata/bad"); err == nil || !strings.Contains(err.Error(), "allbad_cvx.txt") {
		t.Errorf("ImportDir(bad): %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello\n"), 0o644)
	if _, _, err := codes.ImportDir(nil, dir); !errors.Is(err, codes.ErrUnrecognized) {
		t.Errorf("ImportDir(no CDC file): %v", err)
	}
	if _, _, err := codes.ImportDir(nil, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ImportDir(missing): %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestReportString(t *testing.T) {
	_, rep := importFixture(t)
	s := rep.String()
	for _, want := range []string{
		"testdata/cdc/cvx.txt: cvx (pipe), 12 records, newest 2024-05-02: 12 added, 0 updated, 0 unchanged, 0 stale",
		"codes: testdata/cdc/cvx.txt:12: 3 fields: not a cvx line, skipped",
		"testdata/cdc/README: ignored: not a supported CDC code-set file",
		"warning: product \"ACEL-IMUNE\": unknown CVX 20",
		"now: 12 CVX, 7 MVX, 8 products",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

// Run with -race: lookups on the shared default set while imports build new sets from it.
func TestConcurrentUse(t *testing.T) {
	newer, err := os.ReadFile("testdata/newer/cvx.xml")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set := codes.Default()
			for j := range 200 {
				if v, ok := set.Vaccine("08"); !ok || v.Status != codes.StatusActive {
					t.Errorf("Vaccine(08) = %+v", v)
					return
				}
				v, _ := set.Vaccine("102")
				v.Groups[0] = "scribbled" // callers own their copies
				_ = set.IsProduct("140", "CSL")
				_, _ = set.NDC("4928142550")
				_ = set.Products("140")
				_ = set.VISForCVX("143")
				_ = set.Stats()
				if i%4 == 0 && j%50 == 0 {
					s, _, err := codes.ImportReaders(set, map[string]io.Reader{"cvx.xml": bytes.NewReader(newer)})
					if err != nil {
						t.Error(err)
						return
					}
					if v, _ := s.Vaccine("325"); v.CVX != "325" {
						t.Errorf("imported 325 missing")
					}
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := codes.Default().Vaccine("102"); v.Groups[0] == "scribbled" {
		t.Error("a caller changed the default set")
	}
}

// Files are applied in name order, whatever the map order: with equal dates the later name wins.
func TestImportReadersOrder(t *testing.T) {
	const a = "08|Hep B, from a|hepatitis B vaccine||Active|False|2018/05/10\n"
	const b = "08|Hep B, from b|hepatitis B vaccine||Active|False|2018/05/10\n"
	for range 20 {
		set, rep, err := codes.ImportReaders(nil, map[string]io.Reader{"b.txt": strings.NewReader(b), "a.txt": strings.NewReader(a)})
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := set.Vaccine("08"); v.ShortName != "Hep B, from b" || rep.Files[0].Name != "a.txt" {
			t.Fatalf("08 = %+v, files %v", v, rep.Files)
		}
	}
}

func TestZeroSet(t *testing.T) {
	var zero codes.Set
	if _, ok := zero.Vaccine("08"); ok {
		t.Error("zero set has 08")
	}
	if zero.IsProduct("08", "MSD") || zero.NDCs("49281-0425-50") != nil || zero.Stats().Vaccines != 0 {
		t.Error("zero set is not empty")
	}
	set, _, err := codes.Import(&zero, "testdata/cdc/cvx.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Vaccine("08"); !ok {
		t.Error("import on a zero set lost 08")
	}
	data, err := zero.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := codes.Unmarshal(data); err != nil {
		t.Errorf("empty snapshot does not read back: %v", err)
	}
}

func TestListings(t *testing.T) {
	set := codes.Default()
	vs := set.Vaccines()
	if len(vs) != set.Stats().Vaccines || vs[0].CVX != "01" || !slices.IsSortedFunc(vs, func(a, b codes.Vaccine) int { return cmpCode(a.CVX, b.CVX) }) {
		t.Errorf("Vaccines(): %d, first %+v", len(vs), vs[0])
	}
	ms := set.Manufacturers()
	if len(ms) != set.Stats().Manufacturers || !slices.IsSortedFunc(ms, func(a, b codes.Manufacturer) int { return strings.Compare(a.MVX, b.MVX) }) {
		t.Errorf("Manufacturers(): %d", len(ms))
	}
	gs := set.Groups()
	if len(gs) != set.Stats().Groups || !slices.IsSortedFunc(gs, func(a, b codes.VaccineGroup) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("Groups(): %d", len(gs))
	}
}
