package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// An unknown key or a bad value in the YAML file stops the command with the key and the reason.
func TestConfigFileUnknownKeyOrBadValue(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"mllp:\n  adr: ':2575'\n", "unknown key mllp.adr"},
		{"htpp:\n  addr: ':8080'\n", "unknown key htpp"},
		{"mllp:\n  read_timeout: soon\n", "mllp.read_timeout"},
		{"store:\n  max_batch: many\n", "store.max_batch"},
		{"store:\n  max_batch: 5000\n", "store.max_batch must be between 1 and 1024"},
		{"store:\n  max_batch: 0\n", "store.max_batch must be between 1 and 1024"},
	} {
		file := filepath.Join(t.TempDir(), "vaxgate.yaml")
		if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run([]string{"migrate", "--config", file}, &out, &errb)
		msg := strings.TrimSpace(errb.String())
		if code != 2 || !strings.Contains(msg, tc.want) || !strings.Contains(msg, file) || strings.Contains(msg, "\n") {
			t.Errorf("config %q: exit %d, stderr %q; want exit 2 and one line naming %q and the file", tc.yaml, code, msg, tc.want)
		}
	}
}
