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
	"encoding/binary"
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
func HeaderOf(m *hl7.Message) Header { return HeaderFrom(m, &hl7.Strings{}) }

// HeaderFrom is HeaderOf with the values read through st (hl7.NewStrings of m), so that they
// share its copy of the message instead of costing a string each.
func HeaderFrom(m *hl7.Message, st *hl7.Strings) Header {
	h := Header{Delimiters: m.Delimiters()}
	msh, ok := m.Find("MSH", 1)
	if !ok {
		h.Delimiters = hl7.DefaultDelimiters
		return h
	}
	var f [11]hl7.Field // MSH-1..MSH-11, located in one pass
	msh.FieldsInto(f[:])
	// The four HDs share one array, each capped at its own components.
	var hd [4][8]hl7.Component
	var n [4]int
	total := 0
	for i := range hd {
		n[i] = min(f[2+i].Rep(1).NumComponents(), len(hd[i]))
		total += n[i]
	}
	all := make([]string, 0, total)
	for i, dst := range []*[]string{&h.SendingApplication, &h.SendingFacility, &h.ReceivingApplication, &h.ReceivingFacility} {
		if n[i] == 0 {
			continue
		}
		start := len(all)
		if n[i] == len(hd[i]) {
			// More components than an HD usually has: read them all.
			for _, c := range f[2+i].Rep(1).Components() {
				all = append(all, st.Component(c))
			}
		} else {
			f[2+i].Rep(1).ComponentsInto(hd[i][:n[i]])
			for _, c := range hd[i][:n[i]] {
				all = append(all, st.Component(c))
			}
		}
		*dst = all[start:len(all):len(all)]
	}
	h.ControlID = st.Field(f[9])
	h.ProcessingID = st.Component(f[10].Component(1))
	h.MessageType = st.Component(f[8].Component(1))
	h.TriggerEvent = st.Component(f[8].Component(2))
	return h
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
// costs no copy of them all; and when findings are in that order already (the usual case: a
// few, or only warnings), listed is findings itself, its first max with the capacity clipped,
// no copy at all. listed is for reading.
func Listed(findings []Finding, max int) (listed []Finding, omitted int) {
	if max <= 0 || max > len(findings) {
		max = len(findings)
	}
	if ranked(findings[:max]) && (max == len(findings) || findings[max-1].Severity.rank() <= minRank(findings[max:])) {
		return findings[:max:max], len(findings) - max
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

// ranked reports whether fs are in Listed's order: errors, then warnings, then information.
func ranked(fs []Finding) bool {
	for i := 1; i < len(fs); i++ {
		if fs[i].Severity.rank() < fs[i-1].Severity.rank() {
			return false
		}
	}
	return true
}

// minRank is the lowest rank of fs (the most severe), 3 when fs is empty.
func minRank(fs []Finding) int {
	m := 3
	for _, f := range fs {
		m = min(m, f.Severity.rank())
	}
	return m
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
	seq := b.seq.Add(1)
	var stampBuf [32]byte
	stamp := appendStamp(stampBuf[:0], b.now())
	out := b.write(h, code, listed, more, seq, stamp, "")
	if !isASCII(out) {
		// Say what we wrote: ACK text is UTF-8 whatever the message declared.
		out = b.write(h, code, listed, more, seq, stamp, "UNICODE UTF-8")
	}
	return out
}

// Generic reports whether h gets the generic acknowledgement of its own trigger rather than the
// Z23 VXU acknowledgement: a message type other than VXU, or an event other than V04.
func (h Header) Generic() bool {
	return (h.MessageType != "" && h.MessageType != "VXU") || (h.TriggerEvent != "" && h.TriggerEvent != "V04")
}

// write writes the ACK straight into one buffer sized for it, escaping as hl7.Builder does
// (escape sequences, trailing empty fields and components left out): an ACK costs one
// allocation. ack_test's reference builds the same bytes with hl7.Builder.
func (b *Builder) write(h Header, code string, findings []Finding, more *Finding, seq uint64, stamp []byte, charset string) []byte {
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
	size := 160 + len(h.ControlID) + len(b.prefix) + len(charset)
	for _, hd := range [...][]string{sendApp, sendFac, h.SendingApplication, h.SendingFacility} {
		for _, p := range hd {
			size += len(p) + 1
		}
	}
	for i := range findings {
		size += errSize(&findings[i])
	}
	if more != nil {
		size += errSize(more)
	}
	w := segWriter{buf: make([]byte, 0, size+size/8)}

	w.begin("MSH")
	w.buf = append(w.buf, "|^~\\&"...)
	w.mark = len(w.buf)
	w.comps(sendApp...)
	w.comps(sendFac...)
	w.comps(h.SendingApplication...)
	w.comps(h.SendingFacility...)
	w.rawText(stamp)
	w.text("")
	// The Z23 profile for VXU^V04; the generic ACK of its own trigger, without a profile, for a
	// message the registry does not support (it is not a VXU acknowledgement).
	generic := h.Generic()
	if generic {
		w.comps("ACK", h.TriggerEvent, "ACK")
	} else {
		w.literal("ACK^V04^ACK")
	}
	w.field()
	w.buf = append(w.buf, b.prefix...)
	w.buf = strconv.AppendUint(w.buf, seq, 10)
	w.mark = len(w.buf)
	w.text(processing)
	w.literal("2.5.1")
	w.text("")
	w.text("")
	w.literal("NE")
	w.literal("NE")
	w.text("")
	w.text(charset)
	w.text("")
	w.text("")
	if !generic {
		w.literal("Z23^CDCPHINVS")
	}
	w.end()

	w.begin("MSA")
	w.text(code)
	w.text(h.ControlID)
	w.end()
	if code == AA && len(findings) == 0 && b.Policy.AcceptedERR {
		w.begin("ERR")
		w.text("")
		w.text("")
		w.comps("0", "Message Accepted", "HL70357")
		w.text(string(Information))
		w.end()
	}
	for i := range findings {
		w.err(&findings[i])
	}
	if more != nil {
		w.err(more)
	}
	return w.buf
}

// errSize is about what one finding's ERR segment takes.
func errSize(f *Finding) int { return 120 + len(f.Text) + len(f.Location.Segment) }

// segWriter writes segments with the standard delimiters the way hl7.Builder does: each value
// escaped, trailing empty components of a value and trailing empty fields of a segment left out.
type segWriter struct {
	buf  []byte
	mark int // the end of the last non-empty field of the segment being written
}

func (w *segWriter) begin(name string) {
	w.buf = append(w.buf, name...)
	w.mark = len(w.buf)
}

// end drops the trailing empty fields and ends the segment.
func (w *segWriter) end() {
	w.buf = append(w.buf[:w.mark], '\r')
}

func (w *segWriter) field() { w.buf = append(w.buf, '|') }

// text writes one field of escaped text.
func (w *segWriter) text(s string) {
	w.field()
	if s != "" {
		w.buf = hl7.Escape(w.buf, s, hl7.DefaultDelimiters)
		w.mark = len(w.buf)
	}
}

// rawText writes one field of text that needs no escaping (digits, a time stamp).
func (w *segWriter) rawText(s []byte) {
	w.field()
	if len(s) > 0 {
		w.buf = append(w.buf, s...)
		w.mark = len(w.buf)
	}
}

// literal writes one field the ACK always holds as it is: a constant with no character to escape
// (its components joined with '^'), not empty.
func (w *segWriter) literal(s string) {
	w.field()
	w.buf = append(w.buf, s...)
	w.mark = len(w.buf)
}

// comps writes one field of components, each escaped, without the trailing empty ones.
func (w *segWriter) comps(parts ...string) {
	w.field()
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		if i > 0 {
			w.buf = append(w.buf, '^')
		}
		w.buf = hl7.Escape(w.buf, p, hl7.DefaultDelimiters)
	}
	if len(parts) > 0 {
		w.mark = len(w.buf)
	}
}

// err writes one finding as an ERR segment. ERR-2 always has the form
// segment^sequence^field^repetition^component^subcomponent, the parts not known empty (a field
// named without a repetition is its first); a segment name that is not one (three characters
// A-Z, 0-9, as a damaged message may give) leaves the location out rather than echo garbage.
func (w *segWriter) err(f *Finding) {
	w.begin("ERR")
	w.text("") // ERR-1 is not used in 2.5.1
	if l := f.Location; validSegmentName(l.Segment) {
		seq, rep := l.Sequence, l.Rep
		if seq <= 0 {
			seq = 1
		}
		if l.Field > 0 && rep <= 0 {
			rep = 1
		}
		// segment^sequence^field^repetition^component^subcomponent, trailing empty parts left out.
		var nums [5]int
		n := 1
		nums[0] = seq
		if l.Field > 0 {
			nums[1], nums[2], nums[3], nums[4] = l.Field, rep, l.Component, l.Sub
			n = 5
		}
		for n > 0 && nums[n-1] <= 0 {
			n--
		}
		w.field()
		w.buf = append(w.buf, l.Segment...)
		for _, x := range nums[:n] {
			w.buf = append(w.buf, '^')
			if x > 0 {
				w.buf = strconv.AppendInt(w.buf, int64(x), 10)
			}
		}
		w.mark = len(w.buf)
	} else {
		w.text("")
	}
	w.field()
	w.buf = strconv.AppendInt(w.buf, int64(f.Code), 10)
	w.buf = append(w.buf, '^')
	w.buf = hl7.Escape(w.buf, f.Code.Text(), hl7.DefaultDelimiters)
	w.buf = append(w.buf, "^HL70357"...)
	w.mark = len(w.buf)
	w.text(string(f.Severity))
	if f.App != AppNone {
		w.field()
		w.buf = strconv.AppendInt(w.buf, int64(f.App), 10)
		w.buf = append(w.buf, '^')
		w.buf = hl7.Escape(w.buf, f.App.Text(), hl7.DefaultDelimiters)
		w.buf = append(w.buf, "^HL70533"...)
		w.mark = len(w.buf)
	} else {
		w.text("")
	}
	w.text("")
	w.text("")
	w.text(f.Text)
	w.end()
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
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

// stampLayout is the layout of MSH-7 in an ACK (DTM to the second, with the UTC offset).
const stampLayout = "20060102150405-0700"

// appendStamp appends t as t.AppendFormat(dst, stampLayout) does, written directly for the
// years of four digits (AppendFormat interprets its layout at every call: a tenth of an ACK's
// cost); other years take AppendFormat.
func appendStamp(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	_, offset := t.Zone()
	zone := offset / 60 // minutes, the seconds of an offset dropped, as AppendFormat does
	sign := byte('+')
	if zone < 0 {
		sign, zone = '-', -zone
	}
	if year < 0 || year > 9999 || zone/60 > 99 {
		return t.AppendFormat(dst, stampLayout)
	}
	hour, minute, sec := t.Clock()
	two := func(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
	dst = two(two(dst, year/100), year%100)
	dst = two(two(two(dst, int(month)), day), hour)
	dst = two(two(dst, minute), sec)
	dst = append(dst, sign)
	return two(two(dst, zone/60), zone%60)
}

// Reject builds an AR for a message that could not be processed as a whole, from whatever can be
// read of it: a parsed header when there is one, else what RecoverHeader finds in the raw bytes.
func (b *Builder) Reject(h Header, findings ...Finding) []byte {
	return b.Build(h, AR, findings)
}
