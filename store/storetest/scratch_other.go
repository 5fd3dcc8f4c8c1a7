//go:build !linux

package storetest

import "os"

// scratchDir returns the temporary directory.
func scratchDir() string { return os.TempDir() }
