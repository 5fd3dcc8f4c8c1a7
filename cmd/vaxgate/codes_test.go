package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vaxgate/vaxgate/ingest/codes"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestCodesImport runs `vaxgate codes import` against a real database and checks that the engine's
// code set at its next start is the imported one, and that a file that is not a CDC code set is
// refused without storing anything.
func TestCodesImport(t *testing.T) {
	url := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", url)
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// A new manufacturer code the embedded snapshot does not have.
	mvx := filepath.Join(t.TempDir(), "mvx.txt")
	if err := os.WriteFile(mvx, []byte("ZZQ|Vaxgate Test Biologics||Active|2030/01/02\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := codes.Default().Manufacturer("ZZQ"); ok {
		t.Fatal("fixture code already in the embedded snapshot")
	}
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	if out, err := run("codes", "import", mvx); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	set, err := codeSet(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := set.Manufacturer("ZZQ"); !ok || m.Name != "Vaxgate Test Biologics" {
		t.Errorf("imported MVX not in the engine's code set: %+v %v", m, ok)
	}
	if _, ok := set.Vaccine("140"); !ok {
		t.Error("the import replaced the code set instead of overlaying it")
	}

	bad := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(bad, []byte("these are not codes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := db.LatestCodeSnapshot(ctx)
	if _, err := run("codes", "import", bad); err == nil {
		t.Error("a file that is not a CDC code set was accepted")
	}
	after, _ := db.LatestCodeSnapshot(ctx)
	if !bytes.Equal(before, after) {
		t.Error("a refused import changed the stored code set")
	}
}
