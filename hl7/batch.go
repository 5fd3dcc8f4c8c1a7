package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// A Batch is the content of an HL7 batch file or payload: the envelope
// segments, each as written (without terminator) or nil when absent, and the
// messages. A file with several batches (several BHS ... BTS) keeps its first
// BHS and its last BTS here; its messages are all in Messages, in order.
type Batch struct {
	FHS, BHS, BTS, FTS []byte
	Messages           [][]byte
}

// A BatchCountError reports a batch trailer whose count disagrees with the
// content: BTS-1 (messages in the batch) or FTS-1 (batches in the file).
// The messages were split all the same; a receiver usually reports this as
// a warning and processes them.
type BatchCountError struct {
	Segment  string // "BTS" or "FTS"
	Declared string // the count as written in BTS-1 or FTS-1
	Found    int    // what the batch or file holds
}

func (e *BatchCountError) Error() string {
	what := "messages"
	if e.Segment == "FTS" {
		what = "batches"
	}
	return fmt.Sprintf("hl7: %s-1 declares %q %s, found %d", e.Segment, e.Declared, what, e.Found)
}

// SplitMessages splits text holding one or more messages into messages,
// starting a new one at each line that begins with MSH. Segment terminators
// (LF, CRLF or CR) become CR, blank lines and the spaces or tabs that start
// a line are dropped, and so are batch envelope segments (FHS, BHS, BTS,
// FTS) and a UTF-8 byte order mark. Lines before the first MSH that are not
// envelope segments are returned as a message of their own, which Parse
// will reject, so that nothing the sender sent goes unanswered.
//
// The messages are new slices, independent of data.
func SplitMessages(data []byte) [][]byte {
	b, _ := SplitBatch(data)
	return b.Messages
}

// SplitBatch splits a batch (FHS, BHS, messages, BTS, FTS, all optional) the
// way SplitMessages does, and keeps the envelope segments. The *Batch is
// never nil. The error is nil, a *BatchCountError, or several of them
// joined (errors.Join): the envelope's counts disagree with its content.
// Check it with errors.As; the messages are usable either way.
func SplitBatch(data []byte) (*Batch, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	b := &Batch{}
	out := make([]byte, 0, len(data)+1)
	var (
		errs     []error
		msgStart = -1 // start in out of the message being collected
		inBatch  int  // messages since the last BHS
		batches  int  // BHS seen
	)
	type span struct{ start, end int }
	var msgs []span
	closeMsg := func() {
		if msgStart >= 0 {
			msgs = append(msgs, span{msgStart, len(out)})
			msgStart = -1
		}
	}
	for len(data) > 0 {
		// Cut the next line.
		i := bytes.IndexAny(data, "\r\n")
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 {
			continue
		}
		switch segmentKind(line) {
		case "MSH":
			closeMsg()
			msgStart = len(out)
			inBatch++
		case "FHS", "BHS":
			closeMsg()
			start := len(out)
			out = append(out, line...)
			seg := out[start:len(out):len(out)]
			if line[0] == 'F' {
				if b.FHS == nil {
					b.FHS = seg
				}
			} else {
				batches++
				inBatch = 0
				if b.BHS == nil {
					b.BHS = seg
				}
			}
			continue
		case "BTS", "FTS":
			closeMsg()
			start := len(out)
			out = append(out, line...)
			seg := out[start:len(out):len(out)]
			found := inBatch
			if line[0] == 'F' {
				b.FTS = seg
				found = batches
			} else {
				b.BTS = seg
			}
			if err := checkCount(seg, found); err != nil {
				errs = append(errs, err)
			}
			continue
		default:
			if msgStart < 0 {
				msgStart = len(out) // lines outside any MSH: a message of their own
			}
		}
		out = append(out, line...)
		out = append(out, '\r')
	}
	closeMsg()
	b.Messages = make([][]byte, len(msgs))
	for i, s := range msgs {
		b.Messages[i] = out[s.start:s.end:s.end]
	}
	switch len(errs) {
	case 0:
		return b, nil
	case 1:
		return b, errs[0]
	}
	return b, errors.Join(errs...)
}

// segmentKind returns the name of line if it is MSH or an envelope segment.
func segmentKind(line []byte) string {
	if len(line) < 3 || len(line) > 3 && isAlnum(line[3]) {
		return ""
	}
	switch string(line[:3]) {
	case "MSH":
		return "MSH"
	case "FHS":
		return "FHS"
	case "BHS":
		return "BHS"
	case "BTS":
		return "BTS"
	case "FTS":
		return "FTS"
	}
	return ""
}

// checkCount compares the count in field 1 of a BTS or FTS segment with
// found. An empty count is not checked: the field is optional.
func checkCount(seg []byte, found int) error {
	if len(seg) < 4 {
		return nil
	}
	fs := seg[3] // the field separator, whatever the batch header chose
	f := seg[4:]
	if i := bytes.IndexByte(f, fs); i >= 0 {
		f = f[:i]
	}
	f = bytes.TrimSpace(f)
	if len(f) == 0 {
		return nil
	}
	if n, err := strconv.Atoi(string(f)); err == nil && n == found {
		return nil
	}
	return &BatchCountError{Segment: string(seg[:3]), Declared: string(f), Found: found}
}
