package ack

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/vaxgate/vaxgate/hl7"
)

// BatchHeader is what the answer to a batch echoes of the batch it answers (its FHS and BHS).
// Every transport that receives batches (MLLP, SOAP, files) answers with the same envelope:
// Builder.BatchEnvelope.
type BatchHeader struct {
	// File is set when the batch came in a file envelope (FHS ... FTS): the answer has one too.
	File bool
	// The received BHS-3..BHS-6 (FHS-3..FHS-6 when there is no BHS), as decoded components.
	SendingApplication   []string
	SendingFacility      []string
	ReceivingApplication []string
	ReceivingFacility    []string
	// FileControlID and BatchControlID are the received FHS-11 and BHS-11, echoed in the
	// answer's FHS-12 and BHS-12 (reference file/batch control ID).
	FileControlID  string
	BatchControlID string
	// Comment is written in BTS-2, e.g. when the received BTS-1 did not match the messages found.
	Comment string
}

// BatchHeaderOf reads the envelope of a split batch (hl7.SplitBatch).
func BatchHeaderOf(b *hl7.Batch) BatchHeader {
	h := BatchHeader{File: b.FHS != nil}
	fhs, bhs := hl7.ReadEnvelopeSegment(b.FHS), hl7.ReadEnvelopeSegment(b.BHS)
	main := bhs
	if b.BHS == nil {
		main = fhs
	}
	h.SendingApplication = main.Components(3)
	h.SendingFacility = main.Components(4)
	h.ReceivingApplication = main.Components(5)
	h.ReceivingFacility = main.Components(6)
	h.FileControlID = fhs.Text(11)
	h.BatchControlID = bhs.Text(11)
	return h
}

// Tally counts ACKs by their MSA-1 for a batch answer's BTS-2, as "AA 2, AE 1, AR 0": the same
// words whatever the transport (the drop folders' ACK files write it too).
func Tally(acks [][]byte) string {
	var aa, ae, ar int
	for _, a := range acks {
		i := bytes.Index(a, []byte("\rMSA|"))
		if i < 0 || len(a) < i+7 {
			continue
		}
		switch string(a[i+5 : i+7]) {
		case AA:
			aa++
		case AE:
			ae++
		case AR:
			ar++
		}
	}
	return TallyText(aa, ae, ar)
}

// TallyText writes the counts of a batch answer's BTS-2.
func TallyText(aa, ae, ar int) string {
	return fmt.Sprintf("AA %d, AE %d, AR %d", aa, ae, ar)
}

// BatchEnvelope wraps the ACKs of a batch's messages, in order, in the envelope that answers it:
// BHS ... BTS (BTS-1 = the number of ACKs, BTS-2 their count by ACK code, then what was wrong with
// the received counts, if anything), inside FHS ... FTS (FTS-1 = 1) when the batch came in
// a file envelope. Like the ACKs, the envelope uses |^~\&; sending and receiving application and
// facility are the received ones swapped (the Builder's Application and Facility when the batch
// named no receiver), BHS-11/FHS-11 are new control IDs and BHS-12/FHS-12 reference the received
// ones. Each ACK keeps its own segments; a missing final CR is added.
func (b *Builder) BatchEnvelope(h BatchHeader, acks [][]byte) []byte {
	sendApp, sendFac := h.ReceivingApplication, h.ReceivingFacility
	if len(sendApp) == 0 {
		sendApp = b.Application
	}
	if len(sendFac) == 0 {
		sendFac = b.Facility
	}
	stamp := hl7.Text(b.now().Format("20060102150405-0700"))
	w := hl7.NewBuilder(hl7.DefaultDelimiters)
	header := func(name, reference string) {
		w.Segment(name,
			hl7.Comps(sendApp...),
			hl7.Comps(sendFac...),
			hl7.Comps(h.SendingApplication...),
			hl7.Comps(h.SendingFacility...),
			stamp,
			hl7.Text(""), hl7.Text(""), hl7.Text(""),
			hl7.Text(b.nextControlID()),
			hl7.Text(reference),
		)
	}
	if h.File {
		header("FHS", h.FileControlID)
	}
	header("BHS", h.BatchControlID)
	size := w.Len() + 32
	for _, a := range acks {
		size += len(a) + 1
	}
	out := append(make([]byte, 0, size), w.Bytes()...) // w's buffer is reused below
	for _, a := range acks {
		out = append(out, a...)
		if len(a) > 0 && a[len(a)-1] != '\r' {
			out = append(out, '\r')
		}
	}
	w.Reset()
	comment := Tally(acks)
	if h.Comment != "" {
		comment += "; " + h.Comment
	}
	w.Segment("BTS", hl7.Text(strconv.Itoa(len(acks))), hl7.Text(comment))
	if h.File {
		w.Segment("FTS", hl7.Text("1"))
	}
	return append(out, w.Bytes()...)
}
