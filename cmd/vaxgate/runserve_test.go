package main

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"
)

var servingRE = regexp.MustCompile(`MLLP on (\S+), HTTP on (\S+)`)

// runServe runs `vaxgate <args>` (serve, with its flags) in-process, as the command line does,
// and waits until it serves; the test's clean-up stops it as Ctrl-C does. Configuration comes
// from the environment the test set (VAXGATE_*).
func runServe(t *testing.T, args ...string) *running {
	t.Helper()
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(r.stdout)
	root.SetErr(r.stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	r.stop = stopper(cancel, done)
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	if !r.waitServing(done) {
		t.Fatalf("serve did not start:\n%s", r.stderr.String())
	}
	return r
}

// stopper cancels a running serve once and returns what it returned.
func stopper(cancel context.CancelFunc, done <-chan error) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("serve did not stop")
			}
		})
		return err
	}
}

// waitServing waits for serve's "MLLP on …, HTTP on …" line and reads the addresses from it.
func (r *running) waitServing(done <-chan error) bool {
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(r.stderr.String()); m != nil {
			r.mllp, r.http = m[1], m[2]
			return true
		}
		select {
		case err := <-done:
			r.stderr.Write([]byte("serve ended early: " + errString(err) + "\n"))
			return false
		default:
		}
	}
	return false
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
