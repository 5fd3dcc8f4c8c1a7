package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// State is how far an input has been processed: every message before Offset is answered, and the
// answers are in the first Out bytes of the sink's output. It is saved as a small JSON file (the
// checkpoint) after the answers it covers are synced, so that a run killed at any moment resumes
// after the last checkpoint; the messages between it and the kill are processed again, and the
// store recognises them as resends.
type State struct {
	Offset int64 `json:"offset"`
	Out    int64 `json:"out"`
	// Aux is the size of a second output a sink keeps (the preload's rejects report).
	Aux      int64    `json:"aux,omitempty"`
	Begun    bool     `json:"begun"` // the sink's Begin was called (the ACK file's header is written)
	Done     bool     `json:"done"`
	Envelope Envelope `json:"envelope"`
	EOL      string   `json:"eol"`

	Messages int `json:"messages"`
	Accepted int `json:"accepted"` // AA
	Warnings int `json:"warnings"` // AE with warnings only
	Partial  int `json:"partial"`  // AE with errors: part of the message (some vaccinations) rejected
	Rejected int `json:"rejected"` // AR: nothing stored
	// ByRule counts the errors (ERR severity E) of every answer by location and HL7 error code.
	ByRule map[string]int `json:"by_rule,omitempty"`

	// FailedAt and Failures count the internal failures in a row of the message at that offset.
	FailedAt int64 `json:"failed_at,omitempty"`
	Failures int   `json:"failures,omitempty"`

	// Input identifies the input the state belongs to (preload checks that it did not change).
	InputSize    int64 `json:"input_size,omitempty"`
	InputModTime int64 `json:"input_mod_time,omitempty"` // Unix nanoseconds
}

func (st *State) count(o Outcome) {
	st.Messages++
	switch {
	case o.Code == "AA":
		st.Accepted++
	case o.Code == "AE" && len(o.Errors) > 0:
		st.Partial++
	case o.Code == "AE":
		st.Warnings++
	default:
		st.Rejected++
	}
	if len(o.Errors) > 0 && st.ByRule == nil {
		st.ByRule = map[string]int{}
	}
	for _, e := range o.Errors {
		st.ByRule[e]++
	}
}

// LoadState reads a checkpoint file; a missing file is a new input (zero State, nil error).
func LoadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file: read checkpoint: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("file: checkpoint %s is damaged: %w", filepath.Base(path), err)
	}
	return &st, nil
}

// SaveState writes a checkpoint file atomically and durably: a temporary file, synced, renamed
// over the old one, and the directory synced.
func SaveState(path string, st *State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("file: encode checkpoint: %w", err)
	}
	return writeAtomic(path, data)
}

// writeAtomic replaces path with data: a reader (or a restart) sees the old content or the new,
// never a part.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("file: write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("file: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("file: sync %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("file: close %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("file: rename %s: %w", filepath.Base(path), err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename or creation in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file: open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file: sync directory %s: %w", filepath.Base(dir), err)
	}
	return nil
}
