// Package ack builds the HL7 acknowledgements vaxgate answers every message with: ACK^V04^ACK,
// CDC profile Z23, for VXU^V04, and the generic acknowledgement of their own trigger
// (ACK^Q11^ACK, ACK^A31^ACK, ...) for the message types the registry does not support. It owns
// HL7 table 0357 (message error codes) and CDC table 0533 (application error codes), the ACK code
// policy (AA, AE, AR), the ERR segments that tell a sender exactly what was wrong and where (at
// most MaxERR of them, the rest summed up in one), and the batch envelope (FHS/BHS ... BTS/FTS)
// that answers a batch. Every ACK is written with the standard delimiters |^~\&, whatever the
// sender used (Z23).
package ack

import (
	"bytes"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// The acknowledgement codes (MSA-1, HL7 table 0008).
const (
	AA = "AA" // accepted
	AE = "AE" // accepted with errors or warnings: what was rejected is named in ERR
	AR = "AR" // rejected: nothing of the message was processed
)

// Header is what an ACK echoes of the message it answers. The HD fields are kept as decoded
// components and re-encoded with the ACK's delimiters (always |^~\&), so a message with unusual
// delimiters or escape sequences gets a well-formed ACK.
type Header struct {
	SendingApplication   []string // MSH-3
	SendingFacility      []string // MSH-4
	ReceivingApplication []string // MSH-5
	ReceivingFacility    []string // MSH-6
	ControlID            string   // MSH-10
	ProcessingID         string   // MSH-11.1
	MessageType          string   // MSH-9.1: anything but "" or VXU gets the generic ACK
	TriggerEvent         string   // MSH-9.2: echoed in the ACK's MSH-9.2 (V04 when empty)
	// Delimiters are the sender's (MSH-1/MSH-2), as read; the ACK does not use them.
	Delimiters hl7.Delimiters
}

// HeaderOf reads the header of a parsed message.
func HeaderOf(m *hl7.Message) Header {
	h := Header{Delimiters: m.Delimiters()}
	msh, ok := m.Find("MSH", 1)
	if !ok {
		h.Delimiters = hl7.DefaultDelimiters
		return h
	}
	h.SendingApplication = components(msh.Field(3))
	h.SendingFacility = components(msh.Field(4))
	h.ReceivingApplication = components(msh.Field(5))
	h.ReceivingFacility = components(msh.Field(6))
	h.ControlID = msh.Field(10).String()
	h.ProcessingID = msh.Field(11).Component(1).String()
	h.MessageType = msh.Field(9).Component(1).String()
	h.TriggerEvent = msh.Field(9).Component(2).String()
	return h
}

func components(f hl7.Field) []string {
	r := f.Rep(1)
	n := r.NumComponents()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.Component(i + 1).String()
	}
	return out
}

// RecoverHeader reads what it can of the MSH of a message that could not be parsed, so that even
// a damaged message gets an ACK that names its control ID when the bytes allow it.
func RecoverHeader(raw []byte) Header {
	h := Header{Delimiters: hl7.DefaultDelimiters}
	start := bytes.Index(raw, []byte("MSH"))
	if start < 0 || len(raw) < start+4 {
		return h
	}
	line := raw[start:]
	if end := bytes.IndexAny(line, "\r\n"); end >= 0 {
		line = line[:end]
	}
	if len(line) < 4 {
		return h
	}
	fs := line[3]
	d := hl7.DefaultDelimiters
	if len(line) >= 8 {
		c := line[4:8]
		if distinct(fs, c[0], c[1], c[2], c[3]) {
			d = hl7.Delimiters{Field: fs, Component: c[0], Repetition: c[1], Escape: c[2], Subcomponent: c[3]}
		}
	}
	h.Delimiters = d
	fields := bytes.Split(line, []byte{fs})
	// fields[0] is "MSH", fields[1] the encoding characters; fields[i] is MSH-(i+1).
	get := func(n int) []byte {
		if n-1 < len(fields) {
			f := fields[n-1]
			if i := bytes.IndexByte(f, d.Repetition); i >= 0 {
				f = f[:i]
			}
			return f
		}
		return nil
	}
	hd := func(n int) []string {
		f := get(n)
		if len(f) == 0 {
			return nil
		}
		parts := bytes.Split(f, []byte{d.Component})
		out := make([]string, len(parts))
		for i, p := range parts {
			out[i] = text(hl7.Unescape(nil, p, d))
		}
		return out
	}
	h.SendingApplication = hd(3)
	h.SendingFacility = hd(4)
	h.ReceivingApplication = hd(5)
	h.ReceivingFacility = hd(6)
	if f := get(10); f != nil {
		h.ControlID = text(hl7.Unescape(nil, f, d))
	}
	first := func(n int) string {
		f := get(n)
		if i := bytes.IndexByte(f, d.Component); i >= 0 {
			f = f[:i]
		}
		return text(hl7.Unescape(nil, f, d))
	}
	h.ProcessingID = first(11)
	if typ := hd(9); len(typ) > 0 {
		h.MessageType = typ[0]
		if len(typ) > 1 {
			h.TriggerEvent = typ[1]
		}
	}
	return h
}

// text makes recovered bytes valid UTF-8: the charset of a damaged message is unknown, and the ACK
// must not carry invalid bytes back.
func text(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

func distinct(b ...byte) bool {
	for i, x := range b {
		if x == '\r' || x == '\n' || (x >= '0' && x <= '9') || (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') {
			return false
		}
		for _, y := range b[i+1:] {
			if x == y {
				return false
			}
		}
	}
	return true
}

// Policy decides the acknowledgement code from the findings. The zero value is not useful; start
// from DefaultPolicy.
type Policy struct {
	// WarningsAE answers AE when only warnings were found (the CDC default); false answers AA.
	WarningsAE bool
	// AcceptedERR adds "ERR|||0^Message Accepted^HL70357|I" to an AA, as some senders expect.
	AcceptedERR bool
}

// DefaultPolicy is SPEC §2.5: AE for any error or warning, and an explicit accepted ERR on AA.
var DefaultPolicy = Policy{WarningsAE: true, AcceptedERR: true}

// Code is the acknowledgement code for a processed message with these findings: AA when nothing
// but information was found, AE otherwise (warnings only per the policy). AR is not decided here:
// it is the caller's when the message as a whole was not processed.
func (p Policy) Code(findings []Finding) string {
	code := AA
	for _, f := range findings {
		switch f.Severity {
		case Error:
			return AE
		case Warning:
			if p.WarningsAE {
				code = AE
			}
		}
	}
	return code
}

// DefaultMaxERR is how many findings an ACK lists at most when Builder.MaxERR is 0. A message
// with more findings gets one more ERR that says how many were left out: an ACK stays a few tens
// of kilobytes whatever the message holds, and the archive keeps every finding.
const DefaultMaxERR = 100

// Builder builds ACK messages. It is safe for concurrent use.
type Builder struct {
	// Application and Facility name this registry in MSH-3/MSH-4 when the message's receiving
	// application/facility (MSH-5/MSH-6) are empty.
	Application []string
	Facility    []string
	Policy      Policy
	// MaxERR bounds the findings listed in one ACK (0: DefaultMaxERR).
	MaxERR int
	// Now returns the time stamped in MSH-7; nil means time.Now.
	Now func() time.Time

	prefix string
	seq    atomic.Uint64
}

// NewBuilder returns a Builder whose ACK control IDs are unique across restarts: a prefix from
// the start time and a counter.
func NewBuilder(application, facility []string, policy Policy) *Builder {
	return &Builder{
		Application: application,
		Facility:    facility,
		Policy:      policy,
		prefix:      "VG" + strconv.FormatInt(time.Now().UnixMilli(), 36) + "-",
	}
}

func (b *Builder) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Builder) maxERR() int {
	if b.MaxERR > 0 {
		return b.MaxERR
	}
	return DefaultMaxERR
}

func (b *Builder) nextControlID() string {
	return b.prefix + strconv.FormatUint(b.seq.Add(1), 10)
}

// Listed returns the findings an ACK lists: errors first, then warnings, then information, each
// in message order, at most max of them (all when max <= 0); omitted is how many are left out
// (Omitted yields them). It copies only what it returns, so a message with a million findings
// costs no copy of them all.
func Listed(findings []Finding, max int) (listed []Finding, omitted int) {
	if max <= 0 || max > len(findings) {
		max = len(findings)
	}
	listed = make([]Finding, 0, max)
	for rank := 0; rank < 3 && len(listed) < max; rank++ {
		for _, f := range findings {
			if f.Severity.rank() == rank {
				listed = append(listed, f)
				if len(listed) == max {
					break
				}
			}
		}
	}
	return listed, len(findings) - len(listed)
}

// Omitted yields, in the order Listed uses, the findings Listed(findings, max) leaves out.
func Omitted(findings []Finding, max int) iter.Seq[Finding] {
	return func(yield func(Finding) bool) {
		if max <= 0 {
			return
		}
		seen := 0
		for rank := 0; rank < 3; rank++ {
			for _, f := range findings {
				if f.Severity.rank() != rank {
					continue
				}
				if seen++; seen <= max {
					continue
				}
				if !yield(f) {
					return
				}
			}
		}
	}
}

// Build returns the ACK for a message with the given header, acknowledgement code and findings.
// Findings are sorted errors first (stable within a severity), one ERR segment each, at most
// MaxERR of them; past that, one more ERR says how many findings were left out.
func (b *Builder) Build(h Header, code string, findings []Finding) []byte {
	listed, omitted := Listed(findings, b.maxERR())
	var more *Finding
	if omitted > 0 {
		s := summary(Omitted(findings, b.maxERR()))
		more = &s
	}
	controlID := b.nextControlID()
	stamp := b.now().Format("20060102150405-0700")
	out := b.build(h, code, listed, more, controlID, stamp, "")
	if !isASCII(out) {
		// Say what we wrote: ACK text is UTF-8 whatever the message declared.
		out = b.build(h, code, listed, more, controlID, stamp, "UNICODE UTF-8")
	}
	return out
}

// Generic reports whether h gets the generic acknowledgement of its own trigger rather than the
// Z23 VXU acknowledgement: a message type other than VXU, or an event other than V04.
func (h Header) Generic() bool {
	return (h.MessageType != "" && h.MessageType != "VXU") || (h.TriggerEvent != "" && h.TriggerEvent != "V04")
}

func (b *Builder) build(h Header, code string, findings []Finding, more *Finding, controlID, stamp, charset string) []byte {
	sendApp, sendFac := h.ReceivingApplication, h.ReceivingFacility
	if len(sendApp) == 0 {
		sendApp = b.Application
	}
	if len(sendFac) == 0 {
		sendFac = b.Facility
	}
	processing := h.ProcessingID
	if processing == "" {
		processing = "P"
	}
	// The Z23 profile for VXU^V04; the generic ACK of its own trigger, without a profile, for a
	// message the registry does not support (it is not a VXU acknowledgement).
	msgType, profile := hl7.Comps("ACK", "V04", "ACK"), hl7.Comps("Z23", "CDCPHINVS")
	if h.Generic() {
		msgType, profile = hl7.Comps("ACK", h.TriggerEvent, "ACK"), hl7.Value{}
	}
	w := hl7.NewBuilder(hl7.DefaultDelimiters)
	w.Segment("MSH",
		hl7.Comps(sendApp...),
		hl7.Comps(sendFac...),
		hl7.Comps(h.SendingApplication...),
		hl7.Comps(h.SendingFacility...),
		hl7.Text(stamp),
		hl7.Text(""),
		msgType,
		hl7.Text(controlID),
		hl7.Text(processing),
		hl7.Text("2.5.1"),
		hl7.Text(""), hl7.Text(""),
		hl7.Text("NE"), hl7.Text("NE"),
		hl7.Text(""),
		hl7.Text(charset),
		hl7.Text(""), hl7.Text(""),
		profile,
	)
	w.Segment("MSA", hl7.Text(code), hl7.Text(h.ControlID))
	if code == AA && len(findings) == 0 && b.Policy.AcceptedERR {
		w.Segment("ERR", hl7.Text(""), hl7.Text(""),
			hl7.Comps("0", "Message Accepted", "HL70357"), hl7.Text(string(Information)))
	}
	for _, f := range findings {
		w.Segment("ERR", errSegment(f)...)
	}
	if more != nil {
		w.Segment("ERR", errSegment(*more)...)
	}
	return w.Bytes()
}

// summary is the ERR that stands for the findings an ACK leaves out: the code and severity of the
// most serious of them (the first: they come sorted), no location, and how many of each severity
// there are.
func summary(rest iter.Seq[Finding]) Finding {
	var e, w, i int
	var first Finding
	for f := range rest {
		if e+w+i == 0 {
			first = f
		}
		switch f.Severity {
		case Error:
			e++
		case Warning:
			w++
		default:
			i++
		}
	}
	return Finding{
		Rule:     "more-findings",
		Code:     first.Code,
		Severity: first.Severity,
		Text: fmt.Sprintf("%d more findings (%d errors, %d warnings, %d information) are not listed in this acknowledgement; "+
			"the registry keeps them all. Correct the problems listed above wherever they occur in the message.",
			e+w+i, e, w, i),
	}
}

// errSegment writes one finding as an ERR segment. ERR-2 always has the form
// segment^sequence^field^repetition^component^subcomponent, the parts not known empty (a field
// named without a repetition is its first); a segment name that is not one (three characters
// A-Z, 0-9, as a damaged message may give) leaves the location out rather than echo garbage.
func errSegment(f Finding) []hl7.Value {
	loc := hl7.Text("")
	if l := f.Location; validSegmentName(l.Segment) {
		seq, rep := l.Sequence, l.Rep
		if seq <= 0 {
			seq = 1
		}
		if l.Field > 0 && rep <= 0 {
			rep = 1
		}
		if l.Field <= 0 {
			loc = hl7.Comps(l.Segment, itoa(seq))
		} else {
			loc = hl7.Comps(l.Segment, itoa(seq), itoa(l.Field), itoa(rep), itoa(l.Component), itoa(l.Sub))
		}
	}
	app := hl7.Text("")
	if f.App != AppNone {
		app = hl7.Comps(strconv.Itoa(int(f.App)), f.App.Text(), "HL70533")
	}
	return []hl7.Value{
		hl7.Text(""), // ERR-1 is not used in 2.5.1
		loc,
		hl7.Comps(strconv.Itoa(int(f.Code)), f.Code.Text(), "HL70357"),
		hl7.Text(string(f.Severity)),
		app,
		hl7.Text(""), hl7.Text(""),
		hl7.Text(f.Text),
	}
}

// validSegmentName reports a segment ID: three characters A-Z or 0-9, starting with a letter.
func validSegmentName(s string) bool {
	if len(s) != 3 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 3; i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func itoa(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// Reject builds an AR for a message that could not be processed as a whole, from whatever can be
// read of it: a parsed header when there is one, else what RecoverHeader finds in the raw bytes.
func (b *Builder) Reject(h Header, findings ...Finding) []byte {
	return b.Build(h, AR, findings)
}
