package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func TestNewIsMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := storetest.New(t), storetest.New(t)
	for _, db := range []interface {
		Ready(context.Context) error
	}{a, b} {
		if err := db.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	}
	if _, err := a.Pool.Exec(ctx, "INSERT INTO organizations (code, name) VALUES ('X', 'X')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.Pool.QueryRow(ctx, "SELECT count(*) FROM organizations").Scan(&n); err != nil || n != 0 {
		t.Errorf("other database sees %d organizations (%v)", n, err)
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		db := storetest.New(t)
		if err := db.Pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	db := storetest.New(t)
	// The drop runs in the background.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database %s still exists 30s after its test", name)
		}
	}
}

func TestParallel(t *testing.T) {
	for i := 0; i < 8; i++ {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			db := storetest.New(t)
			if _, err := db.Pool.Exec(context.Background(), "INSERT INTO organizations (code, name) VALUES ('X', 'X')"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNewTiming reports what a test pays for its database (the drop overlaps the next test).
func TestNewTiming(t *testing.T) {
	const n = 20
	t0 := time.Now()
	for i := 0; i < n; i++ {
		t.Run("", func(t *testing.T) { storetest.New(t) })
	}
	t.Logf("storetest.New + drop: %v per test database", time.Since(t0)/n)
}

// TestMissingBinariesFail runs this test binary with no usable PostgreSQL binaries: a test that
// needs a database must fail with the reason, not skip.
func TestMissingBinariesFail(t *testing.T) {
	if os.Getenv("STORETEST_CHILD") != "" {
		storetest.New(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinariesFail$")
	cmd.Env = append(os.Environ(), "STORETEST_CHILD=1", "VAXGATE_PG_BINDIR="+t.TempDir(), storetest.DatabaseURLEnv+"=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("test binary without PostgreSQL passed:\n%s", out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestMissingBinariesFail") || !strings.Contains(string(out), "storetest: pgembed: VAXGATE_PG_BINDIR=") {
		t.Errorf("output does not say why:\n%s", out)
	}
}
