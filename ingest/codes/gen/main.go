// Command gen builds the code snapshot that package codes embeds, from a directory of CDC
// code-set downloads:
//
//	go generate ./ingest/codes   (runs: go run ./gen -src ../../../shared/codes -out snapshot.dat)
//
// Every supported CDC file in the directory is imported (see codes.ImportDir); the others are
// listed and ignored. The output depends only on the files' content, so regenerating from the same
// downloads gives the same bytes, which a test of package codes checks. The file is replaced only
// when its content changes.
//
// gen imports package codes, which embeds snapshot.dat: if that file is missing, create an empty
// one first (the package compiles with it, and only Default needs it to be valid).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

func main() {
	src := flag.String("src", "../../../shared/codes", "directory of CDC code-set files")
	out := flag.String("out", "snapshot.dat", "snapshot file to write")
	quiet := flag.Bool("q", false, "print only problems")
	flag.Parse()
	if err := run(*src, *out, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, out string, quiet bool) error {
	set, rep, err := codes.ImportDir(nil, src)
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprint(os.Stderr, rep.String())
	}
	data, err := set.MarshalBinary()
	if err != nil {
		return err
	}
	// Check what we wrote reads back to the same bytes before replacing the old snapshot.
	back, err := codes.Unmarshal(data)
	if err != nil {
		return fmt.Errorf("generated snapshot does not read back: %w", err)
	}
	again, err := back.MarshalBinary()
	if err != nil || !bytes.Equal(again, data) {
		return fmt.Errorf("generated snapshot does not round-trip (%v)", err)
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, data) {
		if !quiet {
			fmt.Fprintf(os.Stderr, "%s is up to date (%d bytes)\n", out, len(data))
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(os.Stderr, "wrote %s (%d bytes)\n", out, len(data))
	}
	return nil
}
