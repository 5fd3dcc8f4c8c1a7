package file

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// ACKFile is the Sink of the drop-folder transport: the answers to one input file, written as they
// come, in the input's order and with its line terminator. When the input was a batch, the ACKs are
// wrapped the same way: FHS (when the input had one) and BHS echoing the input's envelope with
// sender and receiver swapped and the input's control IDs as references, and BTS/FTS with the
// counts. Only the header, one ACK and the write buffer are in memory at a time.
type ACKFile struct {
	f    *os.File
	w    *bufio.Writer
	size int64
	eol  []byte
	// Application and Facility name this registry in FHS/BHS-3 and -4 when the input's receiving
	// application and facility are empty.
	application, facility []string
	now                   func() time.Time
}

// ACKFileOptions name this registry in the envelope of batch ACK files.
type ACKFileOptions struct {
	Application, Facility []string
	Now                   func() time.Time
}

// OpenACKFile opens (creating it) the ACK file at path for the input whose state is st: what lies
// beyond the checkpoint (st.Out bytes) was written after it and is cut, since those messages are
// answered again.
func OpenACKFile(path string, st *State, o ACKFileOptions) (*ACKFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("file: open ACK file: %w", err)
	}
	if err := f.Truncate(st.Out); err != nil {
		f.Close()
		return nil, fmt.Errorf("file: truncate ACK file: %w", err)
	}
	if _, err := f.Seek(st.Out, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("file: seek ACK file: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	eol := []byte(st.EOL)
	if len(eol) == 0 {
		eol = []byte("\r")
	}
	return &ACKFile{f: f, w: bufio.NewWriterSize(f, 256<<10), size: st.Out, eol: eol,
		application: o.Application, facility: o.Facility, now: o.Now}, nil
}

// Begin writes the batch header when the input was a batch.
func (a *ACKFile) Begin(env Envelope, eol []byte) error {
	if len(eol) > 0 {
		a.eol = eol
	}
	stamp := a.now().Format("20060102150405-0700")
	id := "VGF" + strconv.FormatInt(a.now().UnixNano(), 36)
	if env.FHS != nil {
		if err := a.segment(a.header("FHS", env.FHS, stamp, id)); err != nil {
			return err
		}
	}
	if env.BHS != nil || env.FHS != nil {
		seg := env.BHS
		if seg == nil {
			seg = env.FHS // a file header without batch header: the batch answers the file
		}
		return a.segment(a.header("BHS", seg, stamp, id+"-1"))
	}
	return nil
}

// header builds FHS or BHS answering the input's envelope segment in: sender and receiver swapped,
// this answer's control ID in field 11 and the input's in field 12 (reference control ID).
func (a *ACKFile) header(name string, in []byte, stamp, controlID string) []byte {
	f := hl7.ReadEnvelopeSegment(in)
	sendApp, sendFac := f.Components(5), f.Components(6)
	if len(sendApp) == 0 {
		sendApp = a.application
	}
	if len(sendFac) == 0 {
		sendFac = a.facility
	}
	b := hl7.NewBuilder(hl7.DefaultDelimiters)
	b.Segment(name,
		hl7.Comps(sendApp...), hl7.Comps(sendFac...),
		hl7.Comps(f.Components(3)...), hl7.Comps(f.Components(4)...),
		hl7.Text(stamp), hl7.Text(""),
		hl7.Text(""), hl7.Text("ACK"),
		hl7.Text(controlID), hl7.Text(f.Text(11)),
	)
	return b.Bytes()
}

// Answer writes one ACK.
func (a *ACKFile) Answer(ans *Answer) error {
	return a.segment(ans.ACK)
}

// Finish writes the batch trailer with the counts: BTS-1 the number of ACKs (one per message of the
// input), BTS-2 how many were accepted, accepted with errors or warnings, and rejected; FTS-1 one
// batch.
func (a *ACKFile) Finish(st *State) error {
	if !st.Envelope.Batch() {
		return nil
	}
	b := hl7.NewBuilder(hl7.DefaultDelimiters)
	b.Segment("BTS", hl7.Text(strconv.Itoa(st.Messages)),
		hl7.Text(ack.TallyText(st.Accepted, st.Warnings+st.Partial, st.Rejected)))
	if st.Envelope.FHS != nil {
		b.Segment("FTS", hl7.Text("1"))
	}
	return a.segment(b.Bytes())
}

// segment writes CR-terminated segments with the input's line terminator.
func (a *ACKFile) segment(data []byte) error {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\r')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		if _, err := a.w.Write(line); err != nil {
			return fmt.Errorf("file: write ACK file: %w", err)
		}
		if _, err := a.w.Write(a.eol); err != nil {
			return fmt.Errorf("file: write ACK file: %w", err)
		}
		a.size += int64(len(line) + len(a.eol))
	}
	return nil
}

// Sync flushes and syncs the file and returns its size.
func (a *ACKFile) Sync() (int64, error) {
	if err := a.w.Flush(); err != nil {
		return 0, fmt.Errorf("file: write ACK file: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return 0, fmt.Errorf("file: sync ACK file: %w", err)
	}
	return a.size, nil
}

// Close closes the file (call Sync first to keep what was written).
func (a *ACKFile) Close() error { return a.f.Close() }
