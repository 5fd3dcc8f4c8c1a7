package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate messages offline: print the findings and the ACK vaxgate would send",
		Long: `Parse and validate every message of each FILE ("-" reads standard input) with the same rules as
the engine, without a database, as if sent by a site allowed to send for the message's MSH-4.
Exit status 0 when every message would be answered AA, 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			validator, err := newValidator(c, codes.Default())
			if err != nil {
				return err
			}
			p, err := ingest.NewPipeline(ingest.Options{
				Committer: ingest.DryRun{}, Validator: validator, ACK: newACKBuilder(c),
				SharingPolicy: ingest.SharingPolicy(c.SharingPolicy), Now: time.Now,
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			allAA := true
			for _, name := range args {
				data, err := readInput(cmd.InOrStdin(), name)
				if err != nil {
					return err
				}
				msgs := hl7.SplitMessages(data)
				if len(msgs) == 0 {
					return fmt.Errorf("%s: no HL7 message found (a message starts with an MSH segment)", name)
				}
				for i, msg := range msgs {
					rec := p.Evaluate(msg)
					if rec.ACKCode != ack.AA {
						allAA = false
					}
					printEvaluation(out, name, i+1, rec)
				}
			}
			if !allAA {
				return exitError{1}
			}
			return nil
		},
	}
	return cmd
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func printEvaluation(w io.Writer, file string, n int, rec *ingest.Record) {
	fmt.Fprintf(w, "== %s message %d (control ID %q): %s\n", file, n, rec.ControlID, rec.ACKCode)
	for _, f := range rec.Findings {
		l := f.Location
		fmt.Fprintf(w, "  %s %-40s %s-%d.%d (seq %d) HL7 %d", f.Severity, f.Rule, l.Segment, l.Field, l.Component, l.Sequence, f.Code)
		if f.App != ack.AppNone {
			fmt.Fprintf(w, " app %d", f.App)
		}
		fmt.Fprintf(w, ": %s\n", f.Text)
	}
	fmt.Fprintln(w, "  ACK:")
	for _, seg := range bytes.Split(bytes.TrimRight(rec.ACK, "\r"), []byte{'\r'}) {
		fmt.Fprintf(w, "    %s\n", seg)
	}
}
