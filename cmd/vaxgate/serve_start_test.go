package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestServeFailedStartOneError: a start that fails says why in one line, exit status 2, and its
// log holds no ERROR line before it: no background job (account expiry, session purge, report
// summaries) reports the database it was using as closed under it. An address already in use
// is found before the private PostgreSQL is even created; a failure after the jobs started
// (here the first administrator's username, which the admin rules refuse) waits for them.
func TestServeFailedStartOneError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs vaxgate serve as a process")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	url := storetest.NewURL(t)

	for _, tc := range []struct {
		name string
		env  []string // on top of a fresh data dir and free ports
		args []string
		want string // the one error line
		url  bool   // use the test database rather than a private PostgreSQL in the data dir
	}{
		{name: "MLLP address in use", args: []string{"--mllp-addr", addr},
			want: "vaxgate: mllp listen " + addr + ": listen tcp " + addr + ": bind: address already in use"},
		{name: "HTTP address in use", args: []string{"--http-addr", addr},
			want: "vaxgate: http listen " + addr + ": listen tcp " + addr + ": bind: address already in use"},
		{name: "first administrator refused", env: []string{"VAXGATE_REGISTRY_FIRST_ADMIN_USERNAME=siteadmin"}, url: true,
			want: `vaxgate: first registry administrator: username may not contain "admin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := privateDataParent(t)
			dbURL := ""
			if tc.url {
				dbURL = url
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append([]string{"serve", "--mllp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...)
			cmd := exec.CommandContext(ctx, self, args...)
			cmd.Env = append(os.Environ(), execMainEnv+"=1",
				"VAXGATE_DATABASE_URL="+dbURL, "VAXGATE_DATA_DIR="+filepath.Join(parent, "data"),
				"VAXGATE_LOG_FORMAT=console", "VAXGATE_LOG_LEVEL=info")
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("serve: %v, want exit status 2\nstderr:\n%s", err, stderr.String())
			}
			var errorLines []string
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.HasPrefix(l, "vaxgate: ") || strings.Contains(l, "\tERROR\t") {
					errorLines = append(errorLines, l)
				}
			}
			if len(errorLines) != 1 || errorLines[0] != tc.want {
				t.Errorf("want the one error line\n%s\ngot\n%s\nstderr:\n%s", tc.want, strings.Join(errorLines, "\n"), stderr.String())
			}
		})
	}
}
