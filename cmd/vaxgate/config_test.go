package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
)

// TestConfigPrecedence checks viper's order: flag > environment > file > default.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vaxgate.yaml")
	if err := os.WriteFile(file, []byte("mllp:\n  addr: ':1111'\nhttp:\n  addr: ':2222'\ndata_dir: /from/file\nlog:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAXGATE_HTTP_ADDR", ":3333")
	t.Setenv("VAXGATE_DATA_DIR", "/from/env")
	var got *config
	root := newRootCmd()
	root.AddCommand(&cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
		var err error
		got, err = loadConfig(cmd)
		return err
	}})
	probe, _, _ := root.Find([]string{"probe"})
	addCommonFlags(probe.Flags())
	probe.Flags().String("mllp-addr", "", "")
	root.SetArgs([]string{"probe", "--config", file, "--data-dir", "/from/flag"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"mllp.addr (file)":   {got.MLLP.Addr, ":1111"},
		"http.addr (env)":    {got.HTTP.Addr, ":3333"},
		"data_dir (flag)":    {got.DataDir, "/from/flag"},
		"log.level (file)":   {got.Log.Level, "debug"},
		"sharing (default)":  {got.SharingPolicy, "ma"},
		"log.format default": {got.Log.Format, "json"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	t.Setenv("VAXGATE_SHARING_POLICY", "maybe")
	root := newRootCmd()
	root.SetArgs([]string{"validate", "-"})
	if err := root.Execute(); err == nil {
		t.Fatal("a bad sharing_policy was accepted")
	}
	if _, err := severities(map[string]string{"x": "loud"}); err == nil {
		t.Error("a bad severity was accepted")
	}
}
