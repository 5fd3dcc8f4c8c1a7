package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/mllp"
)

// sendOptions are the flags of `vaxgate send`.
type sendOptions struct {
	addr    string
	useTLS  bool
	ca      string
	cert    string
	key     string
	timeout time.Duration
	window  int
	raw     bool
}

func newSendCmd() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send --addr HOST:PORT [--tls [--ca FILE] [--cert FILE --key FILE]] FILE...",
		Short: "Send HL7 messages over MLLP and print their ACKs",
		Long: `Send reads each FILE ("-" is standard input), splits it into HL7 messages (segments may end
in CR, LF or CRLF; FHS/BHS batch envelopes are removed), sends every message over one MLLP
connection, and prints each ACK on standard output. A one-line summary per message (its control ID,
MSH-10, and the ACK code, MSA-1) goes to standard error.

The exit status is 0 when every message was answered AA, 1 when any ACK is not AA or a message
could not be sent, and 2 for bad usage.`,
		Example: `  vaxgate send --addr localhost:2575 testdata/vxu.hl7
  vaxgate send --addr iis.example.org:2575 --tls --ca ca.pem --cert site.pem --key site-key.pem batch.hl7
  cat message.hl7 | vaxgate send --addr localhost:2575 --raw -`,
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSend(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "MLLP server address, HOST:PORT (required)")
	f.BoolVar(&o.useTLS, "tls", false, "connect with TLS")
	f.StringVar(&o.ca, "ca", "", "with --tls: PEM file of the CA certificates to trust for the server (default: the system's)")
	f.StringVar(&o.cert, "cert", "", "with --tls: PEM client certificate, for servers that identify senders by certificate")
	f.StringVar(&o.key, "key", "", "with --tls: PEM private key of --cert")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "time allowed to connect, and to get each ACK back")
	f.IntVar(&o.window, "window", 1, "messages sent ahead without waiting for their ACKs (1: one at a time)")
	f.BoolVar(&o.raw, "raw", false, "print each ACK exactly as received, instead of one segment per line")
	_ = cmd.MarkFlagRequired("addr")
	return cmd
}

// sendInput is one message to send and where it came from, for the summary.
type sendInput struct {
	source string // file name, or "stdin"
	n      int    // 1-based position in its file
	msg    []byte
}

func runSend(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o sendOptions, files []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	if o.timeout <= 0 {
		return errors.New("send: --timeout must be positive")
	}
	if o.window < 1 {
		return errors.New("send: --window must be at least 1")
	}
	// Everything is read and split before connecting, so that a bad file name is a usage error
	// that sends nothing rather than a failure halfway through.
	inputs, err := readSendInputs(stdin, files)
	if err != nil {
		return err
	}

	client, err := mllp.Dial(ctx, o.addr, tlsCfg, mllp.WithTimeout(o.timeout))
	if err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitError{1}
	}
	defer client.Close()

	var msgs iter.Seq[[]byte] = func(yield func([]byte) bool) {
		for _, in := range inputs {
			if !yield(in.msg) {
				return
			}
		}
	}
	codes := map[string]int{}
	notAA := 0
	answered := 0
	var printErr error
	sendErr := client.SendPipelined(ctx, msgs, o.window, func(i int, a []byte, _ time.Duration) {
		answered++
		code := sendSummarize(stderr, inputs[i], a)
		codes[code]++
		if code != ack.AA {
			notAA++
		}
		if printErr == nil {
			printErr = sendPrintACK(stdout, a, o.raw)
		}
	})
	if printErr != nil {
		return fmt.Errorf("send: write ACK: %w", printErr)
	}
	switch {
	case sendErr != nil && answered < len(inputs):
		in := inputs[answered]
		fmt.Fprintf(stderr, "%s #%d MSH-10 %s: not answered: %v\n", in.source, in.n, sendControlID(in.msg), sendErr)
		if rest := len(inputs) - answered - 1; rest > 0 {
			fmt.Fprintf(stderr, "%d more message(s) not sent or not answered\n", rest)
		}
	case sendErr != nil:
		fmt.Fprintf(stderr, "send: %v\n", sendErr)
	}
	fmt.Fprintf(stderr, "%d of %d message(s) answered%s\n", answered, len(inputs), sendCodeSummary(codes))
	if sendErr != nil || notAA > 0 {
		return exitError{1}
	}
	return nil
}

func (o sendOptions) tlsConfig() (*tls.Config, error) {
	if !o.useTLS {
		if o.ca != "" || o.cert != "" || o.key != "" {
			return nil, errors.New("send: --ca, --cert and --key need --tls")
		}
		return nil, nil
	}
	if (o.cert == "") != (o.key == "") {
		return nil, errors.New("send: --cert and --key go together")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("send: --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("send: --ca %s: no PEM certificate in it", o.ca)
		}
		cfg.RootCAs = pool
	}
	if o.cert != "" {
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("send: --cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func readSendInputs(stdin io.Reader, files []string) ([]sendInput, error) {
	var inputs []sendInput
	stdinRead := false
	for _, name := range files {
		var (
			data   []byte
			err    error
			source = name
		)
		if name == "-" {
			if stdinRead {
				return nil, errors.New(`send: "-" (standard input) given more than once`)
			}
			stdinRead = true
			source = "stdin"
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("send: read %s: %w", source, err)
		}
		msgs := hl7.SplitMessages(data)
		// Lines before the first MSH come back as a message of their own, sent as they are (the
		// server answers AR, which is what a tester may want to see); but a file with no MSH at
		// all is most likely the wrong file.
		if !slices.ContainsFunc(msgs, func(m []byte) bool { return bytes.HasPrefix(m, []byte("MSH")) }) {
			return nil, fmt.Errorf("send: %s: no HL7 message in it (no MSH segment)", source)
		}
		for i, m := range msgs {
			if bytes.IndexByte(m, hl7.FrameStart) >= 0 || bytes.IndexByte(m, hl7.FrameEnd) >= 0 {
				return nil, fmt.Errorf("send: %s message %d: contains an MLLP framing byte (0x0B or 0x1C); is the file MLLP-framed?", source, i+1)
			}
			inputs = append(inputs, sendInput{source: source, n: i + 1, msg: m})
		}
	}
	return inputs, nil
}

// sendSummarize writes the one-line summary of a message and its ACK and returns MSA-1 ("" when
// the ACK cannot be read).
func sendSummarize(w io.Writer, in sendInput, a []byte) string {
	id := sendControlID(in.msg)
	m, err := hl7.Parse(a)
	if err != nil {
		fmt.Fprintf(w, "%s #%d MSH-10 %s: unreadable ACK: %v\n", in.source, in.n, id, err)
		return ""
	}
	code := m.Get("MSA-1")
	line := fmt.Sprintf("%s #%d MSH-10 %s: %s", in.source, in.n, id, sendOrUnknown(code))
	if n := m.Count("ERR"); n > 0 && code != ack.AA {
		line += fmt.Sprintf(" (%d ERR)", n)
	}
	if got := m.Get("MSA-2"); got != ack.RecoverHeader(in.msg).ControlID {
		line += fmt.Sprintf(" (but MSA-2 is %q)", got)
	}
	fmt.Fprintln(w, line)
	return code
}

func sendControlID(msg []byte) string {
	return sendOrUnknown(ack.RecoverHeader(msg).ControlID)
}

func sendOrUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// sendPrintACK prints an ACK: as received, or for people one segment per line and a blank line after.
func sendPrintACK(w io.Writer, a []byte, raw bool) error {
	if raw {
		_, err := w.Write(a)
		return err
	}
	var b strings.Builder
	for seg := range strings.FieldsFuncSeq(string(a), func(r rune) bool { return r == '\r' || r == '\n' }) {
		b.WriteString(seg)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// sendCodeSummary is ": 2 AA, 1 AE" for the acknowledgement codes seen, in a fixed order.
func sendCodeSummary(codes map[string]int) string {
	var parts []string
	for _, c := range []string{ack.AA, ack.AE, ack.AR, ""} {
		if n := codes[c]; n > 0 {
			name := c
			if c == "" {
				name = "unreadable"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
		}
	}
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		if c != ack.AA && c != ack.AE && c != ack.AR && c != "" {
			parts = append(parts, fmt.Sprintf("%d %s", codes[c], c))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}
