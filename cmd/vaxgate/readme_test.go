package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store/storetest"
)

// execMainEnv makes the test binary behave as the vaxgate command (see TestMain), so that the
// README's shell blocks run the code under test without a separate build.
const execMainEnv = "VAXGATE_TEST_EXEC_MAIN"

// readmeBlock is a fenced shell block of the README marked runnable: ```sh runnable [exit=N].
type readmeBlock struct {
	line int    // line of the opening fence
	code string // the commands
	exit int    // the exit status the block must end with (default 0)
}

var fenceRE = regexp.MustCompile("^```sh runnable(?: exit=(\\d+))?\\s*$")

func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += l + "\n"
		default:
			if m := fenceRE.FindStringSubmatch(l); m != nil {
				cur = &readmeBlock{line: n}
				if m[1] != "" {
					cur.exit, _ = strconv.Atoi(m[1])
				}
			}
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: runnable block never closed", cur.line)
	}
	return blocks
}

// TestREADMECommands runs, in order, every shell block of README.md marked ```sh runnable against
// a scratch `vaxgate serve --demo` (its own database, free ports): the README's commands must run
// as written. `vaxgate` and `./bin/vaxgate` are this test binary acting as the command; the
// default addresses localhost:2575 and localhost:8080 are replaced by the scratch server's, and
// the demo SOAP password placeholder by the password the server printed.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs the README's commands")
	}
	blocks := readmeBlocks(t, filepath.Join("..", "..", "README.md"))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```sh runnable block")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	dir := filepath.Join(work, "repo")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", execMainEnv, self)
	if err := os.WriteFile(filepath.Join(dir, "bin", "vaxgate"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	shared, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	haveShared := false
	if _, err := os.Stat(shared); err == nil {
		haveShared = os.Symlink(shared, filepath.Join(work, "shared")) == nil
	}

	dbURL := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", dbURL)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	srv := runServe(t, "serve", "--demo")
	mllpAddr, httpAddr, stdout := srv.mllp, srv.http, srv.stdout
	ctx := context.Background()
	password := ""
	if m := regexp.MustCompile(`SOAP: \S+\s+username \S+\s+password (\S+)`).FindStringSubmatch(stdout.String()); m != nil {
		password = m[1]
	}
	subst := strings.NewReplacer(
		"localhost:2575", mllpAddr,
		"localhost:8080", httpAddr,
		"the password make run printed", password,
	)

	env := append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"))
	for _, b := range blocks {
		name := fmt.Sprintf("README.md:%d", b.line)
		if !haveShared && strings.Contains(b.code, "../shared") {
			t.Logf("%s: skipped: ../shared is absent", name)
			continue
		}
		bctx, bcancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd := exec.CommandContext(bctx, "bash", "-euo", "pipefail", "-c", subst.Replace(b.code))
		cmd.Dir = dir
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		err := cmd.Run()
		bcancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if code != b.exit {
			t.Errorf("%s: exit status %d, want %d:\n%s\noutput:\n%s", name, code, b.exit, b.code, out.String())
		}
	}
}
