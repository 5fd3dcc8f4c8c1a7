// Command z22tables writes ingest/validate/z22_tables.go from the NIST Z22 conformance profile in
// ../shared/profiles (run by `go generate ./ingest/validate`). Without the shared profiles it
// leaves the committed table alone and says so: the table is derived data, not a build input.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vaxgate/vaxgate/ingest/validate/gen/z22"
)

func main() {
	dir := flag.String("profiles", "../../../shared/profiles", "directory holding "+z22.ProfileFile)
	out := flag.String("o", "z22_tables.go", "output file")
	flag.Parse()
	if _, err := os.Stat(filepath.Join(*dir, z22.ProfileFile)); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "z22tables: %s not found in %s; keeping the committed %s\n", z22.ProfileFile, *dir, *out)
		return
	}
	src, err := z22.Generate(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "z22tables:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "z22tables:", err)
		os.Exit(1)
	}
}
