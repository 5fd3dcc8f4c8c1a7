package validate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vaxgate/vaxgate/ingest/validate/gen/z22"
)

// TestCatalogueDocIsCurrent fails when docs/validation.md is not what the catalogue generates.
func TestCatalogueDocIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCatalogue(&b); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../docs/validation.md")
	if err != nil {
		t.Fatalf("docs/validation.md: %v (run go generate ./ingest/validate)", err)
	}
	if !bytes.Equal(committed, b.Bytes()) {
		t.Error("docs/validation.md is stale: run go generate ./ingest/validate and commit it")
	}
}

// TestZ22TablesAreCurrent regenerates z22_tables.go from the NIST profile in ../shared/profiles
// and compares it with the committed file.
func TestZ22TablesAreCurrent(t *testing.T) {
	dir := "../../../shared/profiles"
	if _, err := os.Stat(filepath.Join(dir, z22.ProfileFile)); err != nil {
		t.Skipf("shared profiles not present (%s): cannot check z22_tables.go against the NIST Z22 profile", dir)
	}
	want, err := z22.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("z22_tables.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("z22_tables.go is stale: run go generate ./ingest/validate and commit it")
	}
}

// TestZ22Tables checks a few facts of the derived tables that the rules rely on.
func TestZ22Tables(t *testing.T) {
	if d := fieldDef(segRXA, 3); d == nil || d.usage != uR || z22Datatypes[d.dt].id != "TS_NZ" {
		t.Errorf("RXA-3: %+v", d)
	}
	if d := fieldDef(segPID, 8); d == nil || d.vs != vsHL70001IZ {
		t.Errorf("PID-8: %+v", d)
	}
	for _, c := range []string{"F", "M", "U"} {
		if !z22ValueSets[vsHL70001IZ].hasString(c) {
			t.Errorf("HL70001_IZ lacks %s", c)
		}
	}
	if z22ValueSets[vsHL70001IZ].has([]byte("X")) {
		t.Error("HL70001_IZ has X")
	}
	for _, s := range []string{"CDCREC", "NCIT", "UCUM", "NIP001", "CDCPHINVS", "HL70163", "99ABC", "L"} {
		if !knownCodingSystem([]byte(s)) {
			t.Errorf("coding system %s unknown", s)
		}
	}
	if segByName("RXA") != segRXA || segByName("ZZZ") != -1 {
		t.Error("segByName")
	}
	if nodeOf[segOBX] < 0 || z22Structure[z22Structure[nodeOf[segOBX]].parent].group != "VXU_V04.ORDER.OBSERVATION" {
		t.Error("OBX is not in the observation group")
	}
}
