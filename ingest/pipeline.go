package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// Record is what the pipeline hands to the store for one message: the archive entry (always) and
// the registry content to store (when the message was accepted, in whole or in part).
//
// The strings read from the message (ControlID, Facility, MessageType, the VXU's values) share one
// copy of it (hl7.Strings): they cost one allocation, not one each, and keep that copy alive as
// long as any of them is referenced, as Raw keeps the message. Whoever keeps one beyond the
// record's life (a cache) should keep a clone (strings.Clone).
type Record struct {
	Transport   Transport
	Sender      *Sender // nil when the sender was not authenticated
	Env         string  // "P" or "T"; "" when the message was rejected before it was known
	ControlID   string
	Facility    string
	MessageType string
	ReceivedAt  time.Time
	Raw         []byte
	ACK         []byte
	ACKCode     string
	Findings    []ack.Finding
	// ResendKey says whether this message's ACK is the final answer to its sender + control ID +
	// content (Digest): a resend of it gets the stored ACK back.
	ResendKey bool
	// Digest identifies the message's content for resend detection (ContentDigest); nil when the
	// message could not be parsed.
	Digest []byte
	// Amend, set for accepted messages, returns the ACK and its code rebuilt with findings that
	// only the store can make, from what the registry holds: a control ID the site already used
	// for another message (0357 code 205), an update or deletion of a vaccination the registry
	// does not hold (code 204). The store archives and answers that ACK; Amend may be called
	// more than once (a batch written again in halves) and keeps nothing between calls.
	Amend func(extra []ack.Finding) (ackMessage []byte, code string)
	// VXU is the content to store, without the vaccinations that were rejected; nil when nothing
	// is to be stored.
	VXU *VXU
	// Sharing carries the data-sharing policy inputs the store applies.
	Sharing SharingInput
	// Charset names the fallback character set that decoded part of Raw (FallbackUsed); "" when
	// none did. The archive keeps it, so that DecodeArchived reads Raw as it was read here.
	Charset string
}

// SharingInput is what the store needs to decide a registry patient's data-sharing status.
type SharingInput struct {
	// PreGoLive is set for reports received from a site before its go-live date (backload):
	// a patient first known from them gets status Unknown.
	PreGoLive bool
	// HonorPD1 applies PD1-12 (Y = protect → No, N → Yes) instead of only recording it.
	HonorPD1 bool
}

// Committer stores records with a group commit: Commit returns at once, and the Pending's Wait
// returns the ACK to send once the record is durable. For a resend it returns the ACK stored with
// the original message and stores nothing.
type Committer interface {
	Commit(rec *Record) Pending
}

// Validator checks a parsed VXU and returns its findings (ingest/validate implements it).
type Validator interface {
	Validate(m *hl7.Message, site string) []ack.Finding
}

// SharingPolicy is the jurisdiction's data-sharing policy.
type SharingPolicy string

// The data-sharing policies: Massachusetts records PD1-12 but never changes sharing through HL7;
// "pd1" honours PD1-12.
const (
	SharingPolicyMA  SharingPolicy = "ma"
	SharingPolicyPD1 SharingPolicy = "pd1"
)

// Options configure a Pipeline.
type Options struct {
	Committer     Committer
	Validator     Validator // nil: no validation beyond the header checks (tests only)
	ACK           *ack.Builder
	SharingPolicy SharingPolicy
	Logger        *zap.Logger
	Registerer    prometheus.Registerer
	Now           func() time.Time
}

// Pipeline is the single entry point every transport calls.
type Pipeline struct {
	o        Options
	log      *zap.Logger
	messages *prometheus.CounterVec
	lastSeen *prometheus.GaugeVec
	findings *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// The metrics' children a message updates, resolved once per label set rather than looked up
	// by label values at every message: countKey → *countChildren, Transport → Observer,
	// ack.Severity → Counter.
	counts     sync.Map
	durations  sync.Map
	severities sync.Map
}

// countKey is the labels count updates a message's metrics with.
type countKey struct {
	t      Transport
	sender bool // the sender is known
	site   string
	env    string
	code   string
}

// countChildren are the metrics of one countKey; lastSeen is nil when the message does not mark
// its site as heard from.
type countChildren struct {
	messages prometheus.Counter
	lastSeen prometheus.Gauge
}

// NewPipeline returns a pipeline; it registers its metrics with o.Registerer when not nil.
func NewPipeline(o Options) (*Pipeline, error) {
	if o.Committer == nil {
		return nil, errors.New("ingest: pipeline needs a committer")
	}
	if o.ACK == nil {
		o.ACK = ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	}
	if o.SharingPolicy == "" {
		o.SharingPolicy = SharingPolicyMA
	}
	if o.SharingPolicy != SharingPolicyMA && o.SharingPolicy != SharingPolicyPD1 {
		return nil, fmt.Errorf("ingest: unknown sharing policy %q (want %q or %q)", o.SharingPolicy, SharingPolicyMA, SharingPolicyPD1)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Pipeline{
		o:   o,
		log: o.Logger,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_messages_total",
			Help: "Messages processed, by transport, sending site (\"unknown\" before the sender is known) and acknowledgement code (\"unanswered\": no ACK, the database stayed unavailable).",
		}, []string{"transport", "site", "code"}),
		lastSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vaxgate_site_last_message_timestamp_seconds",
			Help: "When a site's last message was answered (Unix time), by environment (P production, T test): alerts on production sites gone silent.",
		}, []string{"site", "env"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_findings_total",
			Help: "Validation findings reported to senders, by severity.",
		}, []string{"severity"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaxgate_pipeline_seconds",
			Help:    "Time from a message handed to the pipeline to its ACK being ready (after commit).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"transport"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.messages, p.lastSeen, p.findings, p.duration} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// ErrEmptyMessage is the error Submit and Wait return, with an AR, for a payload that holds
// nothing but whitespace: the sender's mistake, answered without reaching the store (a SOAP
// transport answers it with a soap:Sender fault, MLLP with the AR).
var ErrEmptyMessage = errors.New("ingest: empty message")

// Submit processes one message and returns its ACK once the accepted records are committed.
// A non-nil error means an internal failure; the ACK returned with it is then an AR saying so.
// The exceptions: ErrUnavailable (the database stayed unavailable) comes with no ACK at all, and
// ErrEmptyMessage (errors.Is) is the sender's error, answered with its AR.
func (p *Pipeline) Submit(ctx context.Context, env Envelope) ([]byte, error) {
	return p.Start(ctx, env).Wait(ctx)
}

// Start parses, checks, validates and hands the message to the committer in the caller's
// goroutine, so that messages started in order are committed in order; Wait returns the ACK.
//
// A payload that is an HL7 batch (it starts with FHS or BHS) is split: each of its messages is
// started in order, and Wait returns their ACKs in the envelope that answers the batch
// (ack.Builder.BatchEnvelope). A payload with nothing but whitespace is answered AR at once
// (ErrEmptyMessage) and never reaches the committer.
func (p *Pipeline) Start(ctx context.Context, env Envelope) Pending {
	start := p.o.Now()
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = start
	}
	if env.TooLarge == 0 {
		switch payloadKind(env.Payload) {
		case payloadEmpty:
			return p.empty(env, start)
		case payloadBatch:
			return p.startBatch(ctx, env)
		}
	}
	pr := new(prepared)
	rec, header := p.prepareInto(pr, env)
	storableHeader(rec)
	pr.pend = pending{p: p, rec: rec, header: header, start: start, ack: rec.ACK, code: rec.ACKCode}
	pr.pend.inner = p.o.Committer.Commit(rec)
	return &pr.pend
}

// prepared holds what the pipeline makes of one message in one allocation rather than one each:
// its record, its pending answer, and what the record's Amend builds on.
type prepared struct {
	rec      Record
	pend     pending
	header   ack.Header
	findings []ack.Finding // the findings of the record's own ACK
	digest   [sha256.Size]byte
}

// amend is Record.Amend of an accepted message: its ACK rebuilt with extra findings.
func (pr *prepared) amend(extra []ack.Finding) ([]byte, string) {
	p := pr.pend.p
	all := make([]ack.Finding, 0, len(pr.findings)+len(extra))
	all = append(append(all, pr.findings...), extra...)
	code := p.o.ACK.Policy.Code(all)
	return p.o.ACK.Build(pr.header, code, all), code
}

type pending struct {
	p      *Pipeline
	rec    *Record
	header ack.Header
	start  time.Time
	// The ACK prepare built and its code: when the committer answers with these very bytes, the
	// code is known without reading the answer again.
	ack   []byte
	code  string
	inner Pending
}

// Ready reports whether the committer's answer is ready (Readier): what Wait adds to it never blocks.
func (w *pending) Ready() bool { return Ready(w.inner) }

func (w *pending) Wait(ctx context.Context) ([]byte, error) {
	out, err := w.inner.Wait(ctx)
	code := w.rec.ACKCode
	if errors.Is(err, ErrUnavailable) {
		// No answer at all, and nothing to archive now (the database is what failed): the
		// transport closes or faults, and the sender's resend is processed when the database is back.
		w.p.log.Warn("message not answered: database unavailable",
			zap.String("control_id", w.rec.ControlID), zap.String("site", siteCode(w.rec.Sender)),
			zap.String("transport", string(w.rec.Transport)))
		w.p.count(w.rec.Transport, w.rec.Sender, "", "unanswered")
		return nil, fmt.Errorf("ingest: commit message: %w", err)
	}
	if err != nil {
		// Nothing of this message is stored: say so, and let the sender retry the same message.
		w.p.log.Error("message not committed",
			zap.String("control_id", w.rec.ControlID), zap.String("site", siteCode(w.rec.Sender)),
			zap.String("transport", string(w.rec.Transport)), zap.Error(err))
		out = w.p.o.ACK.Reject(w.header, ack.Finding{
			Rule: "internal-error", Code: ack.CodeInternalError, Severity: ack.Error,
			Text: "The registry could not store this message because of an internal error; nothing was stored. Please send it again later.",
		})
		code = ack.AR
		err = fmt.Errorf("ingest: commit message: %w", err)
		// Archive what was received and answered, without its content and without the resend key
		// (so the sender's retry is processed). Not waited for: the store may be what failed.
		archived := *w.rec
		archived.VXU, archived.ResendKey, archived.ACK, archived.ACKCode = nil, false, out, ack.AR
		archived.Findings = append(archived.Findings[:len(archived.Findings):len(archived.Findings)], ack.Finding{
			Rule: "internal-error", Code: ack.CodeInternalError, Severity: ack.Error, Text: err.Error()})
		w.p.o.Committer.Commit(&archived)
	} else if sameBytes(out, w.ack) {
		code = w.code
	} else if len(out) > 0 {
		// Another answer than the record's own ACK (a resend's original, an amended ACK): its code.
		code = ackCode(out, code)
	}
	w.p.count(w.rec.Transport, w.rec.Sender, w.rec.Env, code)
	w.p.observeDuration(w.rec.Transport, w.start)
	return out, err
}

// observeDuration records the time from start to now in vaxgate_pipeline_seconds.
func (p *Pipeline) observeDuration(t Transport, start time.Time) {
	o, ok := p.durations.Load(t)
	if !ok {
		o, _ = p.durations.LoadOrStore(t, p.duration.WithLabelValues(string(t)))
	}
	o.(prometheus.Observer).Observe(p.o.Now().Sub(start).Seconds())
}

// parsed holds reusable hl7.Messages: a Message keeps its index tables across Parse, so parsing
// into one taken from here allocates nothing once its tables are large enough (a fresh hl7.Parse
// allocates them every time). Nothing read from a Message keeps a reference to it: what the
// pipeline keeps (header, decoded VXU, findings) is copied out as strings.
var parsed = sync.Pool{New: func() any { return new(hl7.Message) }}

// parse parses data into a reused Message; release gives it back, dropping its reference to data.
func parse(data []byte) (*hl7.Message, error) {
	m := parsed.Get().(*hl7.Message)
	return m, m.Parse(data)
}

func release(m *hl7.Message) {
	m.Reset() // forgets data, keeps the tables
	parsed.Put(m)
}

// count counts an answered (or unanswered) message, and marks when its site was last heard from
// in the message's environment.
func (p *Pipeline) count(t Transport, s *Sender, env, code string) {
	site := siteCode(s)
	if site == "" {
		site = "unknown"
	}
	k := countKey{t: t, sender: s != nil, site: site, env: env, code: code}
	v, ok := p.counts.Load(k)
	if !ok {
		c := &countChildren{messages: p.messages.WithLabelValues(string(t), site, code)}
		if s != nil && env != "" && code != "unanswered" {
			c.lastSeen = p.lastSeen.WithLabelValues(site, env)
		}
		v, _ = p.counts.LoadOrStore(k, c)
	}
	c := v.(*countChildren)
	c.messages.Inc()
	if c.lastSeen != nil {
		c.lastSeen.Set(float64(p.o.Now().UnixNano()) / 1e9)
	}
}

// sameBytes reports whether a and b are the same slice (not merely equal bytes).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// ackCode reads MSA-1 of a stored ACK (a resend answer may differ from this message's code).
func ackCode(a []byte, fallback string) string {
	m, err := parse(a)
	defer release(m)
	if err != nil {
		return fallback
	}
	if c := m.Get("MSA-1"); c != "" {
		return c
	}
	return fallback
}

func siteCode(s *Sender) string {
	if s == nil {
		return ""
	}
	return s.SiteCode
}

// prepare runs every step before persistence and returns the record to commit.
func (p *Pipeline) prepare(env Envelope) (*Record, ack.Header) {
	return p.prepareInto(new(prepared), env)
}

// prepareInto is prepare, with the record and what its Amend needs held in pr.
func (p *Pipeline) prepareInto(pr *prepared, env Envelope) (*Record, ack.Header) {
	rec := &pr.rec
	*rec = Record{
		Transport:  env.Transport,
		Sender:     env.Sender,
		ReceivedAt: env.ReceivedAt,
		Raw:        env.Payload,
		ResendKey:  true,
	}
	// A rejected message stored nothing, so it is not a resend key: the same message sent again is
	// evaluated again (and accepted, if what made it fail — a site's status, a code set — was fixed).
	reject := func(h ack.Header, f ...ack.Finding) (*Record, ack.Header) {
		rec.ControlID = h.ControlID
		rec.ACKCode = ack.AR
		rec.Findings = f
		rec.ResendKey = false
		rec.ACK = p.o.ACK.Reject(h, f...)
		p.countFindings(f)
		return rec, h
	}

	if env.TooLarge > 0 {
		h := ack.RecoverHeader(env.Payload)
		return reject(h, ack.Finding{
			Rule: "message-too-large", Location: ack.Location{Segment: "MSH", Sequence: 1},
			Code: ack.CodeDataType, Severity: ack.Error, App: ack.AppInvalidValue,
			Text: fmt.Sprintf("The message is %d bytes, larger than this registry accepts; nothing was stored. Split it into smaller messages.", env.TooLarge),
		})
	}
	m, err := parse(env.Payload)
	defer release(m)
	if err != nil {
		h := ack.RecoverHeader(env.Payload)
		loc := ack.Location{Segment: "MSH", Sequence: 1}
		var pe *hl7.ParseError
		if errors.As(err, &pe) && pe.Segment != "" {
			loc = ack.Location{Segment: pe.Segment, Sequence: 1, Field: pe.Field}
		}
		return reject(h, ack.Finding{
			Rule: "message-unparseable", Location: loc,
			Code: ack.CodeSegmentSequence, Severity: ack.Error,
			Text: "The message could not be read as HL7 v2: " + err.Error() + ". Nothing was stored.",
		})
	}
	// The strings of the record (header, decoded VXU) share one copy of the message, or the
	// message itself when the transport handed it over for good (Envelope.Owned).
	var st hl7.Strings
	if env.Owned {
		st = hl7.NewStringsShared(m)
	} else {
		st = hl7.NewStrings(m)
	}
	h := ack.HeaderFrom(m, &st)
	hd := mshReader{st: &st}
	hd.msh, _ = m.Find("MSH", 1)
	rec.ControlID = h.ControlID
	rec.Digest = contentDigest(m, pr.digest[:0])
	rec.MessageType = messageType(hd.get(9, 1), hd.get(9, 2))
	rec.Facility = st.Component(hd.msh.Field(4).Component(1))
	if rec.Facility == "" {
		rec.Facility = st.Component(hd.msh.Field(4).Component(2))
	}

	if s := env.Sender; s != nil && !s.MaySendFor(rec.Facility) {
		for _, other := range s.Shared {
			if other.MaySendFor(rec.Facility) {
				env.Sender, rec.Sender = other, other
				break
			}
		}
	}
	if f, ok := p.checkHeader(hd, env.Sender, rec.Facility); !ok {
		return reject(h, f)
	}
	if env.Sender.Status == SiteTesting {
		rec.Env = "T"
	} else {
		rec.Env = "P"
	}

	var findings []ack.Finding
	if p.o.Validator != nil {
		findings = p.o.Validator.Validate(m, env.Sender.SiteCode)
	}
	v := decodeWith(m, resolverOf(p.o.Validator), st)
	if f, ok := p.sharingFinding(&v.Patient); ok {
		findings = append(findings, f)
	}

	rejected := map[int]bool{}
	for _, f := range findings {
		if f.Severity != ack.Error {
			continue
		}
		if f.Group == 0 {
			// The patient or the message itself is unusable: nothing is stored.
			return reject(h, findings...)
		}
		rejected[f.Group] = true
	}
	if len(rejected) > 0 {
		kept := v.Orders[:0:0]
		for _, o := range v.Orders {
			if !rejected[o.Group] {
				kept = append(kept, o)
			}
		}
		v.Orders = kept
	}
	rec.VXU = v
	rec.Charset = FallbackUsed(m, env.Payload)
	rec.Findings = findings
	rec.ACKCode = p.o.ACK.Policy.Code(findings)
	rec.ACK = p.o.ACK.Build(h, rec.ACKCode, findings)
	pr.pend.p, pr.header, pr.findings = p, h, findings
	rec.Amend = pr.amend
	rec.Sharing = SharingInput{
		// Go-live is the start of production: test messages of a testing site are not a backload;
		// a backload (vaxgate preload) is pre-go-live data whenever it is loaded.
		PreGoLive: env.Backload || rec.Env == "P" && !env.Sender.GoLive.IsZero() && env.ReceivedAt.Before(env.Sender.GoLive),
		HonorPD1:  p.o.SharingPolicy == SharingPolicyPD1,
	}
	p.countFindings(findings)
	return rec, h
}

func (p *Pipeline) countFindings(fs []ack.Finding) {
	for _, f := range fs {
		c, ok := p.severities.Load(f.Severity)
		if !ok {
			c, _ = p.severities.LoadOrStore(f.Severity, p.findings.WithLabelValues(string(f.Severity)))
		}
		c.(prometheus.Counter).Inc()
	}
}

// messageType is MSH-9's type and event as the record keeps them ("VXU^V04"), without building
// the string for the one every accepted message has.
func messageType(typ, event string) string {
	if typ == "VXU" && event == "V04" {
		return "VXU^V04"
	}
	return typ + "^" + event
}

// mshReader reads MSH values as Message.Get("MSH-f-c") does (the first subcomponent of the first
// repetition), through the message's shared strings.
type mshReader struct {
	st  *hl7.Strings
	msh hl7.Segment
}

func (r mshReader) get(field, comp int) string {
	return r.st.Sub(r.msh.Field(field).Rep(1).Component(comp).Sub(1))
}

// checkHeader applies SPEC §2.3: message type, version, sender authorization, processing ID.
func (p *Pipeline) checkHeader(m mshReader, s *Sender, facility string) (ack.Finding, bool) {
	loc := func(field, comp int) ack.Location {
		return ack.Location{Segment: "MSH", Sequence: 1, Field: field, Component: comp}
	}
	typ, event := m.get(9, 1), m.get(9, 2)
	switch {
	case typ != "VXU":
		return ack.Finding{Rule: "msh-9-message-type", Location: loc(9, 1), Code: ack.CodeUnsupportedMessage,
			Severity: ack.Error, App: ack.AppTableValueNotFound,
			Text: fmt.Sprintf("Message type %q is not supported: this interface accepts VXU^V04.", typ)}, false
	case event != "V04":
		return ack.Finding{Rule: "msh-9-event", Location: loc(9, 2), Code: ack.CodeUnsupportedEvent,
			Severity: ack.Error, App: ack.AppTableValueNotFound,
			Text: fmt.Sprintf("Trigger event %q is not supported: this interface accepts VXU^V04.", event)}, false
	}
	if v := m.get(12, 1); v != "2.5.1" {
		return ack.Finding{Rule: "msh-12-version", Location: loc(12, 1), Code: ack.CodeUnsupportedVersion,
			Severity: ack.Error, App: ack.AppTableValueNotFound,
			Text: fmt.Sprintf("HL7 version %q is not supported: send version 2.5.1.", v)}, false
	}
	if m.get(10, 1) == "" {
		return ack.Finding{Rule: "msh-10-control-id", Location: loc(10, 0), Code: ack.CodeRequiredFieldMissing,
			Severity: ack.Error, App: ack.AppRequiredDataMissing,
			Text: "MSH-10 (message control ID) is empty: every message needs a unique control ID."}, false
	}
	// Checked before the sender, so that `vaxgate validate` (which has none) answers as the server.
	if pid := m.get(11, 1); pid != "P" && pid != "T" {
		return ack.Finding{Rule: "msh-11-processing-id", Location: loc(11, 1), Code: ack.CodeUnsupportedProcessing,
			Severity: ack.Error, App: ack.AppInvalidValue,
			Text: fmt.Sprintf("Processing ID %q (MSH-11) is not supported: send P (production) or T (testing), as your site's onboarding status allows.", pid)}, false
	}
	if facility == "" {
		return ack.Finding{Rule: "msh-4-facility-missing", Location: loc(4, 1), Code: ack.CodeRequiredFieldMissing,
			Severity: ack.Error, App: ack.AppRequiredDataMissing,
			Text: "MSH-4 (sending facility) is empty: the registry identifies the site a message comes from by it. Send the facility identifier the registry gave your site."}, false
	}
	if s == nil {
		return ack.Finding{Rule: "sender-unknown", Location: loc(4, 0), Code: ack.CodeUnknownKey,
			Severity: ack.Error,
			Text:     "The sender is not registered for this interface: nothing was stored. Contact the registry to set up your connection."}, false
	}
	if !s.MaySendFor(facility) {
		return ack.Finding{Rule: "msh-4-facility-not-authorized", Location: loc(4, 1), Code: ack.CodeUnknownKey,
			Severity: ack.Error, App: ack.AppInvalidValue,
			Text: fmt.Sprintf("Sending facility %q (MSH-4) does not belong to this sender's site: a site cannot submit for another.", facility)}, false
	}
	pid := m.get(11, 1)
	want := ""
	switch s.Status {
	case SiteTesting:
		want = "T"
	case SiteProduction:
		want = "P"
	}
	if pid != want {
		text := fmt.Sprintf("Processing ID %q (MSH-11) is not allowed for this site, which is in %s: send %q.", pid, s.Status, want)
		if want == "" {
			text = fmt.Sprintf("Processing ID %q (MSH-11) is not allowed: this site is registered but not yet onboarded for testing or production.", pid)
		}
		return ack.Finding{Rule: "msh-11-processing-id", Location: loc(11, 1), Code: ack.CodeUnsupportedProcessing,
			Severity: ack.Error, App: ack.AppInvalidValue, Text: text}, false
	}
	return ack.Finding{}, true
}

// sharingFinding tells the sender what became of PD1-12 under the policy (SPEC §2.6), when there
// is something to tell.
func (p *Pipeline) sharingFinding(pt *Patient) (ack.Finding, bool) {
	if p.o.SharingPolicy != SharingPolicyMA {
		return ack.Finding{}, false
	}
	seq := 1
	loc := ack.Location{Segment: "PD1", Sequence: seq, Field: 12}
	switch pt.Protection {
	case "Y":
		return ack.Finding{Rule: "pd1-12-objection-not-via-hl7", Location: loc, Code: ack.CodeAccepted,
			Severity: ack.Warning, App: ack.AppDataWasIgnored,
			Text: "PD1-12 = Y was recorded but does not change data sharing: a patient's objection must be recorded in the registry with the objection form by an authorized user."}, true
	case "N":
		return ack.Finding{Rule: "pd1-12-recorded", Location: loc, Code: ack.CodeAccepted,
			Severity: ack.Information, App: ack.AppDataWasIgnored,
			Text: "PD1-12 was recorded; data sharing is managed in the registry."}, true
	}
	return ack.Finding{}, false
}

// Evaluate runs every check of the pipeline on one message without a database and without a
// sender: as if the message came from a site allowed to send for its MSH-4 in the environment its
// MSH-11 names. It returns the record that would be committed, with its findings and ACK; this is
// `vaxgate validate`.
func (p *Pipeline) Evaluate(payload []byte) *Record {
	s := &Sender{SiteCode: "offline", Status: SiteProduction}
	if m, err := hl7.Parse(payload); err == nil {
		msh, _ := m.Find("MSH", 1)
		for _, f := range []string{msh.Field(4).Component(1).String(), msh.Field(4).Component(2).String()} {
			if f != "" { // an empty MSH-4 belongs to no site: AR, as on the server
				s.Facilities = append(s.Facilities, f)
			}
		}
		if m.Get("MSH-11-1") == "T" {
			s.Status = SiteTesting
		}
	}
	if payloadKind(payload) == payloadEmpty {
		return p.emptyRecord(Envelope{Transport: TransportFile, Payload: payload})
	}
	rec, _ := p.prepare(Envelope{Transport: TransportFile, Sender: s, Payload: payload, ReceivedAt: p.o.Now()})
	return rec
}

// NotCheckedOffline lists what Evaluate cannot check without the registry's database: the server
// may answer differently for these reasons. `vaxgate validate` prints it.
var NotCheckedOffline = []string{
	"sender authorization: whether the connection or credential belongs to a site that may send for MSH-4",
	"processing ID against the site's onboarding status: P only from sites in production, T only from sites in testing",
	"resends: a message already received (same site, MSH-10 and content) gets its original ACK; another message under a used MSH-10 is warned (205)",
	"unknown keys: RXA-21 U or D naming an order (ORC-3) the registry does not hold is warned (204)",
	"code sets imported into the database with `vaxgate codes import` (the snapshot in the binary is used)",
}

type payloadClass int

const (
	payloadMessage payloadClass = iota
	payloadEmpty                // nothing but whitespace (and a byte order mark)
	payloadBatch                // starts with FHS or BHS
)

// payloadKind classifies a payload by its first bytes.
func payloadKind(b []byte) payloadClass {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n\v\f")
	switch {
	case len(b) == 0:
		return payloadEmpty
	case len(b) >= 3 && (string(b[:3]) == "FHS" || string(b[:3]) == "BHS") && (len(b) == 3 || !isAlnum(b[3])):
		return payloadBatch
	}
	return payloadMessage
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// emptyRecord is the answer to an empty payload: AR, segment sequence error (no MSH).
func (p *Pipeline) emptyRecord(env Envelope) *Record {
	f := ack.Finding{Rule: "message-empty", Location: ack.Location{Segment: "MSH", Sequence: 1},
		Code: ack.CodeSegmentSequence, Severity: ack.Error, App: ack.AppRequiredDataMissing,
		Text: "The message is empty: nothing but whitespace was received, no MSH segment. Nothing was stored; send the message itself."}
	p.countFindings([]ack.Finding{f})
	return &Record{Transport: env.Transport, Sender: env.Sender, ReceivedAt: env.ReceivedAt, Raw: env.Payload,
		ACKCode: ack.AR, Findings: []ack.Finding{f}, ACK: p.o.ACK.Reject(ack.Header{}, f)}
}

// empty answers an empty payload without the committer: there is nothing to archive or store.
func (p *Pipeline) empty(env Envelope, start time.Time) Pending {
	rec := p.emptyRecord(env)
	p.log.Debug("empty message answered AR", zap.String("site", siteCode(env.Sender)),
		zap.String("transport", string(env.Transport)), zap.String("remote", env.Remote))
	p.count(env.Transport, env.Sender, "", ack.AR)
	p.observeDuration(env.Transport, start)
	return answered{ack: rec.ACK, err: ErrEmptyMessage}
}

// answered is a Pending whose answer is known without a commit.
type answered struct {
	ack []byte
	err error
}

func (a answered) Wait(context.Context) ([]byte, error) { return a.ack, a.err }

// Ready is always true: the answer is known (Readier).
func (answered) Ready() bool { return true }

// startBatch starts each message of a batch payload in order; its Pending answers the batch.
func (p *Pipeline) startBatch(ctx context.Context, env Envelope) Pending {
	b, header := SplitBatch(env.Payload)
	bp := &batchPending{p: p, header: header, items: make([]Pending, len(b.Messages))}
	for i, m := range b.Messages {
		e := env
		e.Payload = m
		bp.items[i] = p.Start(ctx, e)
	}
	return bp
}

// SplitBatch splits a batch payload into its messages and reads what the envelope answering it
// echoes: the received header and, for BTS-2, which of the received counts were wrong. The
// server's answer to a batch (Start) and `vaxgate validate`'s are built from it, so that they agree.
func SplitBatch(payload []byte) (*hl7.Batch, ack.BatchHeader) {
	b, countErr := hl7.SplitBatch(payload)
	h := ack.BatchHeaderOf(b)
	h.Comment = countComment(countErr)
	return b, h
}

// countComment says, for the answer's BTS-2, which counts of the received envelope were wrong.
func countComment(err error) string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		var ce *hl7.BatchCountError
		switch {
		case err == nil:
		case errors.As(err, &ce) && ce == err:
			what := "messages"
			if ce.Segment == "FTS" {
				what = "batches"
			}
			out = append(out, fmt.Sprintf("%s-1 declared %s %s, %d found", ce.Segment, ce.Declared, what, ce.Found))
		default:
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					walk(e)
				}
			}
		}
	}
	walk(err)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "; ") + "; every message found was processed"
}

type batchPending struct {
	p      *Pipeline
	header ack.BatchHeader
	items  []Pending
}

// Ready reports whether every message of the batch has its answer (Readier).
func (b *batchPending) Ready() bool {
	for _, it := range b.items {
		if !Ready(it) {
			return false
		}
	}
	return true
}

// Wait waits for every message of the batch and returns their ACKs in the batch envelope, with
// the errors of the messages that failed (their ACKs in the envelope say so).
func (b *batchPending) Wait(ctx context.Context) ([]byte, error) {
	acks := make([][]byte, 0, len(b.items))
	var errs []error
	for i, it := range b.items {
		a, err := it.Wait(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("ingest: batch message %d of %d: %w", i+1, len(b.items), err))
		}
		if len(a) > 0 {
			acks = append(acks, a)
		}
	}
	return b.p.o.ACK.BatchEnvelope(b.header, acks), errors.Join(errs...)
}

// DryRun is a Committer that stores nothing: every record's own ACK is its answer. It serves
// Evaluate's callers, which need a pipeline without a database.
type DryRun struct{}

type done []byte

func (d done) Wait(context.Context) ([]byte, error) { return d, nil }

// Ready is always true: DryRun answers at once (Readier).
func (done) Ready() bool { return true }

// Commit returns the record's ACK.
func (DryRun) Commit(rec *Record) Pending { return done(rec.ACK) }
