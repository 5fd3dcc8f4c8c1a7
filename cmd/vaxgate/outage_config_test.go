package main

import (
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// The outage and SOAP keys read from the environment, with the defaults the README documents.
func TestOutageAndSOAPConfig(t *testing.T) {
	load := func(t *testing.T) *config {
		t.Helper()
		var got *config
		root := newRootCmd()
		root.AddCommand(&cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			got, err = loadConfig(cmd)
			return err
		}})
		root.SetArgs([]string{"probe"})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	c := load(t)
	if c.Store.OutageWait != 30*time.Second || c.SOAP.MultiMessage || c.SOAP.RetryAfter != 30*time.Second {
		t.Errorf("defaults: store.outage_wait %v, soap.multi_message %v, soap.retry_after %v; want 30s, false, 30s",
			c.Store.OutageWait, c.SOAP.MultiMessage, c.SOAP.RetryAfter)
	}
	t.Setenv("VAXGATE_STORE_OUTAGE_WAIT", "45s")
	t.Setenv("VAXGATE_SOAP_MULTI_MESSAGE", "true")
	t.Setenv("VAXGATE_SOAP_RETRY_AFTER", "1m")
	c = load(t)
	if c.Store.OutageWait != 45*time.Second || !c.SOAP.MultiMessage || c.SOAP.RetryAfter != time.Minute {
		t.Errorf("from the environment: store.outage_wait %v, soap.multi_message %v, soap.retry_after %v",
			c.Store.OutageWait, c.SOAP.MultiMessage, c.SOAP.RetryAfter)
	}
}
