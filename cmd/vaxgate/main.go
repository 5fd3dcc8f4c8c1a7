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
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit status without a message of its own (the command already printed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes one command line and returns its exit status: 0, the command's own status, or 2
// with one line on stderr for a usage error (unknown command or flag, bad arguments).
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(stderr, "vaxgate: "+err.Error())
		return 2
	}
	return 0
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vaxgate",
		Short:         "HL7 v2.5.1 immunization intake engine for a vaccination registry",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "YAML configuration file (env VAXGATE_CONFIG)")
	root.AddCommand(newServeCmd(), newMigrateCmd(), newSendCmd(), newValidateCmd(), newCodesCmd(), newAdminCmd(), newBenchCmd(), newReportCmd(), newPreloadCmd())
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command group (a command with subcommands and nothing to
// run of its own) answer a mistyped subcommand with one line and exit status 2, instead of cobra's
// help text and status 0; the group alone still prints its help.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
}
