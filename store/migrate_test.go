package store_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func open(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// migratedTo opens an empty database migrated to version (an older shape, for a migration test),
// and returns it with a function that runs a statement on it or fails the test.
func migratedTo(t *testing.T, version int32) (*store.DB, func(sql string, args ...any)) {
	t.Helper()
	db := open(t, storetest.NewEmptyURL(t))
	if err := store.MigrateTo(context.Background(), db, version); err != nil {
		t.Fatalf("migrate to %03d: %v", version, err)
	}
	return db, func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// benchMigration measures, b.N times, migrating to the latest version an empty database first
// migrated to version from and filled by setup, whose statements' $1 (where they use it) is the
// number of messages to archive: 1,000,000, or VAXGATE_BENCH_MESSAGES.
func benchMigration(b *testing.B, from int32, setup ...string) {
	ctx := context.Background()
	n := benchMessages(1_000_000)
	for range b.N {
		b.StopTimer()
		db, err := store.Open(ctx, storetest.NewEmptyURL(b))
		if err != nil {
			b.Fatal(err)
		}
		if err := store.MigrateTo(ctx, db, from); err != nil {
			b.Fatal(err)
		}
		for _, sql := range setup {
			var args []any
			if strings.Contains(sql, "$1") {
				args = []any{n}
			}
			if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/migration")
		b.StopTimer()
		db.Close()
	}
}

func TestMigrateFromEmptyAndAgain(t *testing.T) {
	ctx := context.Background()
	db := open(t, storetest.NewEmptyURL(t))
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur != 0 || latest < 1 {
		t.Fatalf("empty database: SchemaVersion = %d, %d", cur, latest)
	}
	if l, err := store.LatestSchemaVersion(); err != nil || l != latest {
		t.Errorf("LatestSchemaVersion = %d, %v; want %d", l, err, latest)
	}
	t0 := time.Now()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	t.Logf("migrating an empty database took %v", time.Since(t0))
	for i := 0; i < 2; i++ { // idempotent
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	cur, _, err = db.SchemaVersion(ctx)
	if err != nil || cur != latest {
		t.Fatalf("after Migrate: version %d, %v; want %d", cur, err, latest)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('organizations', 'messages')").Scan(&n); err != nil || n != 2 {
		t.Errorf("core tables: %d, %v", n, err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	url := storetest.NewEmptyURL(t)
	const procs = 4
	dbs := make([]*store.DB, procs)
	for i := range dbs {
		dbs[i] = open(t, url) // one pool each, as separate processes would have
	}
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	for _, db := range dbs {
		if err := db.Ready(ctx); err != nil {
			t.Errorf("Ready: %v", err)
		}
	}
	var rows int
	if err := dbs[0].Pool.QueryRow(ctx, "SELECT count(*) FROM schema_version").Scan(&rows); err != nil || rows != 1 {
		t.Errorf("schema_version rows: %d, %v", rows, err)
	}
}

func TestReadyFailsWhenSchemaBehind(t *testing.T) {
	ctx := context.Background()
	db := open(t, storetest.NewEmptyURL(t))
	err := db.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "vaxgate migrate") {
		t.Fatalf("Ready on an empty database: %v", err)
	}

	db = storetest.New(t)
	_, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "UPDATE schema_version SET version = $1", latest-1); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err == nil || !strings.Contains(err.Error(), "vaxgate migrate") {
		t.Errorf("Ready with the schema one version behind: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	_, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "UPDATE schema_version SET version = $1", latest+1); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); !errors.Is(err, store.ErrSchemaNewer) {
		t.Errorf("Migrate on a newer schema: %v, want ErrSchemaNewer", err)
	}
	if err := db.Ready(ctx); !errors.Is(err, store.ErrSchemaNewer) {
		t.Errorf("Ready on a newer schema: %v, want ErrSchemaNewer", err)
	}
}

// benchMessages is the number of messages a benchmark archives: VAXGATE_BENCH_MESSAGES when set
// to a positive number, else def.
func benchMessages(def int) int {
	if v, err := strconv.Atoi(os.Getenv("VAXGATE_BENCH_MESSAGES")); err == nil && v > 0 {
		return v
	}
	return def
}
