package pgembed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledOwnerLeavesNoOrphan kills (SIGKILL) a process that started a server: the server must
// shut itself down (parent-death signal), and the data dir must be usable by the next Start.
func TestKilledOwnerLeavesNoOrphan(t *testing.T) {
	if dir := os.Getenv("PGEMBED_TEST_OWNER_DIR"); dir != "" {
		s, err := Start(context.Background(), Options{DataDir: dir, Settings: fast})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(s.cmd.Process.Pid)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := tempDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledOwnerLeavesNoOrphan$")
	cmd.Env = append(os.Environ(), "PGEMBED_TEST_OWNER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("owner: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("owner said %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGQUIT)
			t.Fatalf("postgres (pid %d) still runs 10s after its owner was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	start(t, Options{DataDir: dir})
}
