//go:build !linux

package main

// raiseFileLimit does nothing here: 0 means the limit is not known.
func raiseFileLimit() (uint64, error) { return 0, nil }
