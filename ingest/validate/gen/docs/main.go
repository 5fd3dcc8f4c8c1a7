// Command docs writes docs/validation.md, the rule catalogue of ingest/validate, from the
// catalogue itself (run by `go generate ./ingest/validate`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/vaxgate/vaxgate/ingest/validate"
)

func main() {
	out := flag.String("o", "docs/validation.md", "output file")
	flag.Parse()
	var b bytes.Buffer
	if err := validate.WriteCatalogue(&b); err != nil {
		fmt.Fprintln(os.Stderr, "docs:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "docs:", err)
		os.Exit(1)
	}
}
