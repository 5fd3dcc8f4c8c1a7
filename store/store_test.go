package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestMain gives every test of package store_test a real PostgreSQL (see storetest).
func TestMain(m *testing.M) { storetest.Main(m) }

func TestOpenErrorsHidePassword(t *testing.T) {
	const pw = "Sup3rS3cret"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := storetest.NewURL(t)
	wrongPassword := strings.Replace(good, "://vaxgate:", "://vaxgate:"+pw, 1)
	if wrongPassword == good {
		// An external VAXGATE_TEST_DATABASE_URL: make one with our password.
		wrongPassword = "postgres://nobody:" + pw + "@127.0.0.1:1/x"
	}
	for _, url := range []string{
		wrongPassword,
		"postgres://vaxgate:" + pw + "@127.0.0.1:1/vaxgate?connect_timeout=2", // nothing listens
		"postgres://vaxgate:" + pw + "@127.0.0.1:notaport/vaxgate",            // unparseable
		"host=127.0.0.1 port=1 user=vaxgate password=" + pw + " dbname=vaxgate connect_timeout=2",
		"host=127.0.0.1 port=bad user=vaxgate password='" + pw + "' dbname=vaxgate",
	} {
		db, err := store.Open(ctx, url)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", strings.ReplaceAll(url, pw, "PW"))
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("error without context: %v", err)
		}
	}
}

func TestOpenReady(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("Ready on a migrated database: %v", err)
	}
	var app string
	if err := db.Pool.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app); err != nil {
		t.Fatal(err)
	}
	if app != "vaxgate" {
		t.Errorf("application_name = %q", app)
	}
	db.Close()
	if err := db.Ready(ctx); err == nil {
		t.Error("Ready after Close succeeded")
	}
}
