// Command vaxgate is the intake engine of an Immunization Information System: it receives HL7
// v2.5.1 VXU messages over MLLP and SOAP, validates them, stores patients and vaccinations in
// PostgreSQL and answers every message with an ACK. See `vaxgate help`.
//
// This package only wires configuration, logging, metrics, the store, the pipeline, the transports
// and the admin module together; the behaviour lives in those packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit status without a message of its own (the command already printed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "vaxgate: "+err.Error())
		os.Exit(2)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vaxgate",
		Short:         "HL7 v2.5.1 immunization intake engine for a vaccination registry",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "YAML configuration file (env VAXGATE_CONFIG)")
	root.AddCommand(newServeCmd(), newMigrateCmd(), newSendCmd(), newValidateCmd(), newCodesCmd(), newAdminCmd(), newBenchCmd())
	root.AddCommand(newPreloadCmd())
	return root
}
