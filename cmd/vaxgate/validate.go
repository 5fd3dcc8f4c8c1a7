package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate messages offline: print the findings and the ACK vaxgate would send",
		Long: `Parse and validate every message of each FILE ("-" reads standard input) with the same rules as
the engine, without a database, as if sent by a site allowed to send for the message's MSH-4 in
the environment its MSH-11 names, and print the ACK the server would send (for a batch file, also
the batch envelope the server answers a batch with). What cannot be known offline is listed on
standard error: the server may answer differently for those reasons.
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
			builder := newACKBuilder(c)
			p, err := ingest.NewPipeline(ingest.Options{
				Committer: ingest.DryRun{}, Validator: validator, ACK: builder,
				SharingPolicy: ingest.SharingPolicy(c.SharingPolicy), Now: time.Now,
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			errOut := cmd.ErrOrStderr()
			fmt.Fprintln(errOut, "vaxgate validate: offline, without the registry's database; not checked:")
			for _, what := range ingest.NotCheckedOffline {
				fmt.Fprintf(errOut, "  - %s\n", what)
			}
			allAA := true
			for _, name := range args {
				data, err := readInput(cmd.InOrStdin(), name)
				if err != nil {
					return err
				}
				// The envelope's header and count errors are read as the server reads them.
				batch, header := ingest.SplitBatch(data)
				msgs := batch.Messages
				if len(msgs) == 0 && batch.BHS == nil && batch.FHS == nil {
					// Nothing but whitespace: the server answers AR (an empty message).
					msgs = [][]byte{data}
				}
				acks := make([][]byte, 0, len(msgs))
				for i, msg := range msgs {
					rec := p.Evaluate(msg)
					if rec.ACKCode != ack.AA {
						allAA = false
					}
					printEvaluation(out, name, i+1, rec)
					acks = append(acks, rec.ACK)
				}
				if batch.BHS != nil || batch.FHS != nil {
					fmt.Fprintf(out, "== %s: the batch answer (%d ACKs in the envelope)\n", name, len(acks))
					printSegments(out, builder.BatchEnvelope(header, acks))
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
		where := "(no segment)"
		if segmentID(l.Segment) {
			where = fmt.Sprintf("%s-%d.%d (seq %d)", l.Segment, l.Field, l.Component, l.Sequence)
		}
		fmt.Fprintf(w, "  %s %-40s %s HL7 %d", f.Severity, f.Rule, where, f.Code)
		if f.App != ack.AppNone {
			fmt.Fprintf(w, " app %d", f.App)
		}
		fmt.Fprintf(w, ": %s\n", f.Text)
	}
	fmt.Fprintln(w, "  ACK:")
	printSegments(w, rec.ACK)
}

// segmentID reports whether s can be an HL7 segment ID (three upper-case letters or digits): an
// unreadable message's finding is located at the bytes found where one was expected, which are
// not printed (the ACK leaves its ERR-2 empty too; the finding's text quotes them safely).
func segmentID(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func printSegments(w io.Writer, msg []byte) {
	for _, seg := range bytes.Split(bytes.TrimRight(msg, "\r"), []byte{'\r'}) {
		fmt.Fprintf(w, "    %s\n", seg)
	}
}
