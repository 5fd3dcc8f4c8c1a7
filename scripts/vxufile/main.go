// Command vxufile writes a file of synthetic VXU messages (ingest/vxugen, the traffic of
// `vaxgate bench`) for the file transport and `vaxgate preload`: plain concatenated messages, or an
// FHS/BHS batch, with CR, LF or CRLF line endings. It streams: memory does not grow with -n.
//
//	go run ./scripts/vxufile -n 1000000 -facility X68 -o history.hl7
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

func main() {
	n := flag.Int("n", 1000, "messages")
	out := flag.String("o", "", "output file (required)")
	facility := flag.String("facility", "X68", "MSH-4: a facility of the site that sends the file")
	processing := flag.String("processing-id", "P", "MSH-11: P or T")
	prefix := flag.String("control-ids", "", "prefix of MSH-10 (default: from the time, unique per run)")
	seed := flag.Uint64("seed", 1, "generator seed")
	batch := flag.Bool("batch", false, "wrap the messages in FHS/BHS ... BTS/FTS")
	eol := flag.String("eol", "lf", "line endings: cr, lf or crlf")
	flag.Parse()
	if err := run(*n, *out, *facility, *processing, *prefix, *seed, *batch, *eol); err != nil {
		fmt.Fprintln(os.Stderr, "vxufile:", err)
		os.Exit(1)
	}
}

func run(n int, out, facility, processing, prefix string, seed uint64, batch bool, eol string) error {
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	term := map[string][]byte{"cr": []byte("\r"), "lf": []byte("\n"), "crlf": []byte("\r\n")}[eol]
	if term == nil {
		return fmt.Errorf("-eol must be cr, lf or crlf")
	}
	if prefix == "" {
		prefix = "F" + fmt.Sprint(time.Now().Unix())
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	line := func(s string) { w.WriteString(s); w.Write(term) }
	stamp := time.Now().Format("20060102150405")
	if batch {
		line("FHS|^~\\&|vxufile|" + facility + "|vaxgate|IIS|" + stamp + "||" + out + "||" + prefix + "-F")
		line("BHS|^~\\&|vxufile|" + facility + "|vaxgate|IIS|" + stamp + "||||" + prefix + "-B")
	}
	g := vxugen.New(vxugen.Options{Seed: seed, Facility: facility, ProcessingID: processing, ControlIDs: prefix,
		Patients: max(n/2, 1)})
	for range n {
		m := bytes.TrimRight(g.Next(), "\r")
		if eol != "cr" {
			m = bytes.ReplaceAll(m, []byte("\r"), term)
		}
		w.Write(m)
		w.Write(term)
	}
	if batch {
		line(fmt.Sprintf("BTS|%d", n))
		line("FTS|1")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
