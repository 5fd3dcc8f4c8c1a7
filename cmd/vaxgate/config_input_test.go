package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// TestConfigCharsetAndLimits: charset.fallback, charset.senders and limits.* reach the validator,
// and a character set the engine cannot read stops the start-up.
func TestConfigCharsetAndLimits(t *testing.T) {
	load := func(yaml string) *config {
		t.Helper()
		file := filepath.Join(t.TempDir(), "vaxgate.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var got *config
		root := newRootCmd()
		root.AddCommand(&cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			got, err = loadConfig(cmd)
			return err
		}})
		root.SetArgs([]string{"probe", "--config", file})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	c := load("log:\n  level: info\n")
	v, err := newValidator(c, codes.Default())
	if err != nil {
		t.Fatal(err)
	}
	if fb := v.Fallback(""); fb == nil || fb.Name() != "windows-1252" {
		t.Errorf("default fallback = %v, want windows-1252", fb)
	}
	if c.Limits.MaxSegments != 5000 || c.Limits.MaxRepetitions != 100 || c.Limits.MaxFindings != 500 {
		t.Errorf("default limits %+v", c.Limits)
	}

	c = load("charset:\n  fallback: 8859/1\n  senders:\n    SITE-B: windows-1252\n    SITE-C: UTF-8\nlimits:\n  max_segments: 300\n")
	if v, err = newValidator(c, codes.Default()); err != nil {
		t.Fatal(err)
	}
	if fb := v.Fallback(""); fb == nil || fb.Name() != "ISO-8859-1" {
		t.Errorf("deployment fallback = %v, want ISO-8859-1", fb)
	}
	if fb := v.Fallback("SITE-B"); fb == nil || fb.Name() != "windows-1252" {
		t.Errorf("SITE-B fallback = %v, want windows-1252", fb)
	}
	if fb := v.Fallback("SITE-C"); fb != nil {
		t.Errorf("SITE-C (UTF-8: no fallback) = %v", fb.Name())
	}
	if c.Limits.MaxSegments != 300 {
		t.Errorf("limits.max_segments = %d", c.Limits.MaxSegments)
	}

	for _, bad := range []string{
		"charset:\n  fallback: Shift_JIS\n",
		"charset:\n  senders:\n    SITE-B: klingon\n",
		"limits:\n  max_repetitions: 100000\n",
	} {
		if _, err := newValidator(load(bad), codes.Default()); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
