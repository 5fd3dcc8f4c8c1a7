package codes

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The parsers take whatever an operator uploads. Whatever the input: no panic; an error or a
// problem always says where; and whatever was read can go into a snapshot that reads back to the
// same bytes. The seeds are the fixtures of each format; the parser recognises formats by content,
// so each fuzzer may wander into the others.

func FuzzParseCVX(f *testing.F) {
	fuzzParse(f, "cdc/cvx.txt", "newer/cvx.xml", "formats/cvx_from_cdc_xml.txt", "formats/cvx_utf16.xml", "formats/cvx_cr.txt", "bad/allbad_cvx.txt")
}

func FuzzParseMVX(f *testing.F) {
	fuzzParse(f, "cdc/mvx_from_cdc_xml.txt", "newer/mvx.txt", "formats/mvx.txt", "formats/mvx.xml")
}

func FuzzParseTradename(f *testing.F) {
	fuzzParse(f, "cdc/tradename.xml", "formats/tradename.txt", "formats/tradename_cvx_mvx_from_cdc_xml.txt")
}

func FuzzParseVaccineGroup(f *testing.F) {
	fuzzParse(f, "cdc/cvx_vaccine_group_from_cdc_xml.txt", "formats/vac2vg.xml", "formats/vaccine_group.txt")
}

func FuzzParseNDC(f *testing.F) {
	fuzzParse(f, "cdc/NDC_Unit_use.txt", "cdc/NDC_Unit_sale.txt", "newer/NDC_Unit_sale.txt", "cdc/NDC_Linker.txt")
}

func FuzzParseVIS(f *testing.F) {
	fuzzParse(f, "cdc/vis.xml", "cdc/cvxvis.xml", "cdc/visurl.xml", "cdc/cpt.xml", "bad/truncated.xml", "bad/codeset.xml")
}

var (
	fuzzBaseOnce sync.Once
	fuzzBase     *Set
	fuzzLinker   *cdcFile
)

func fuzzParse(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		data, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("|||\n|||"))
	f.Add([]byte("<a><b><c>1</c></b></a>"))
	fuzzBaseOnce.Do(func() {
		var err error
		if fuzzBase, _, err = ImportDir(nil, "testdata/cdc"); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile("testdata/cdc/NDC_Linker.txt")
		if err != nil {
			f.Fatal(err)
		}
		if fuzzLinker, err = parseCDC("links", data); err != nil {
			f.Fatal(err)
		}
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := parseCDC("fuzz", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "fuzz" {
				t.Fatalf("error without its file: %v", err)
			}
			return
		}
		if cf.records == 0 || !cf.kind.valid() || !cf.format.valid() {
			t.Fatalf("accepted a file with %d records of kind %q, format %q", cf.records, cf.kind, cf.format)
		}
		for _, p := range cf.problems {
			if p.File != "fuzz" || p.Line < 1 {
				t.Fatalf("problem without file and line: %+v", p)
			}
		}
		files := []*cdcFile{cf}
		if cf.kind == KindNDCLinker {
			return // a linker alone is refused; the NDC seeds bring it together with NDC tables
		}
		if cf.kind == KindNDCUse || cf.kind == KindNDCSale {
			lk := *fuzzLinker
			lk.problems = nil
			files = append(files, &lk)
		}
		for _, base := range []*Set{nil, fuzzBase} {
			set, _, err := importParsed(base, files, nil)
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			checkRoundTrip(t, set)
		}
	})
}

func checkRoundTrip(t *testing.T, set *Set) {
	t.Helper()
	a, err := set.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(a)
	if err != nil {
		t.Fatalf("a parsed set does not make a valid snapshot: %v\n%s", err, a)
	}
	b, _ := back.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Fatalf("snapshot does not round-trip:\n%s\n---\n%s", a, b)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(mustRead(f, "snapshot.dat")[:4096])
	small := "vaxgate-codes\t1\nsource\tcvx\tpipe\tcvx.txt\t20240612\t2\ncvx\t08\tActive\t0\t20180510\tHep B\tx\n" +
		"mvx\tMSD\tActive\t\tMerck\nproduct\t08\tMSD\tActive\t\t\tRECOMBIVAX\ngroup\tHepB\t45\nmember\t08\tHepB\n" +
		"ndc\t58160-0821-05\tuse\t43\t\t\t\t\tx\ty\nvis\t25\t08\tCurrent\t\t\tVIS\ncvxvis\t08\t25\nvisurl\t08\t\t\t\n" +
		"cpt\t90744\t08\t\t\nend\t11\n"
	f.Add([]byte(small))
	f.Add([]byte(strings.ReplaceAll(small, "\n", "\r\n")))
	f.Add([]byte("vaxgate-codes\t1\nend\t0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not wrapping ErrFormat: %v", err)
			}
			return
		}
		checkRoundTrip(t, set)
		// Lookups on whatever was read must not panic.
		for cvx := range set.vaccines {
			set.Vaccine(cvx)
			set.Products(cvx)
			set.VISForCVX(cvx)
		}
		for ndc := range set.ndc {
			set.NDC(ndc)
		}
		_ = set.Stats()
	})
}

func FuzzNormalizeNDC(f *testing.F) {
	for _, s := range []string{"49281-0425-50", "49281042550", "0006-4045-00", "49281-425-50", "50090-7541-0", "4928142550", "49281-*425-50", "--", ""} {
		f.Add(s)
	}
	set := Default()
	f.Fuzz(func(t *testing.T, code string) {
		n, ok := NormalizeNDC(code)
		if ok {
			if len(n) != 13 || n[5] != '-' || n[10] != '-' || !allDigits(n[:5]+n[6:10]+n[11:]) {
				t.Fatalf("NormalizeNDC(%q) = %q", code, n)
			}
			if again, ok := NormalizeNDC(n); !ok || again != n {
				t.Fatalf("NormalizeNDC not idempotent on %q: %q", n, again)
			}
		}
		if e, ok := set.NDC(code); ok && len(e.NDC) != 13 {
			t.Fatalf("NDC(%q) = %+v", code, e)
		}
		c := NormalizeCVX(code)
		if NormalizeCVX(c) != c {
			t.Fatalf("NormalizeCVX not idempotent on %q: %q", code, c)
		}
	})
}

func mustRead(f *testing.F, name string) []byte {
	data, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	return data
}
