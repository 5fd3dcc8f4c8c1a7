package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// Record is what the pipeline hands to the store for one message: the archive entry (always) and
// the registry content to store (when the message was accepted, in whole or in part).
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
	// ResendKey says whether this message's ACK is the final answer to its sender + control ID:
	// a resend of it gets the stored ACK back.
	ResendKey bool
	// VXU is the content to store, without the vaccinations that were rejected; nil when nothing
	// is to be stored.
	VXU *VXU
	// Sharing carries the data-sharing policy inputs the store applies.
	Sharing SharingInput
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
	findings *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
			Help: "Messages processed, by transport and acknowledgement code.",
		}, []string{"transport", "code"}),
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
		for _, c := range []prometheus.Collector{p.messages, p.findings, p.duration} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Submit processes one message and returns its ACK once the accepted records are committed.
// A non-nil error means an internal failure; the ACK returned with it is then an AR saying so.
func (p *Pipeline) Submit(ctx context.Context, env Envelope) ([]byte, error) {
	return p.Start(ctx, env).Wait(ctx)
}

// Start parses, checks, validates and hands the message to the committer in the caller's
// goroutine, so that messages started in order are committed in order; Wait returns the ACK.
func (p *Pipeline) Start(ctx context.Context, env Envelope) Pending {
	start := p.o.Now()
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = start
	}
	rec, header := p.prepare(env)
	return &pending{p: p, rec: rec, header: header, start: start, inner: p.o.Committer.Commit(rec)}
}

type pending struct {
	p      *Pipeline
	rec    *Record
	header ack.Header
	start  time.Time
	inner  Pending
}

func (w *pending) Wait(ctx context.Context) ([]byte, error) {
	out, err := w.inner.Wait(ctx)
	code := w.rec.ACKCode
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
	} else if len(out) > 0 {
		code = ackCode(out, code)
	}
	w.p.messages.WithLabelValues(string(w.rec.Transport), code).Inc()
	w.p.duration.WithLabelValues(string(w.rec.Transport)).Observe(w.p.o.Now().Sub(w.start).Seconds())
	return out, err
}

// ackCode reads MSA-1 of a stored ACK (a resend answer may differ from this message's code).
func ackCode(a []byte, fallback string) string {
	m, err := hl7.Parse(a)
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
	rec := &Record{
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
	m, err := hl7.Parse(env.Payload)
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
	h := ack.HeaderOf(m)
	rec.ControlID = h.ControlID
	rec.MessageType = m.Get("MSH-9-1") + "^" + m.Get("MSH-9-2")
	msh, _ := m.Find("MSH", 1)
	rec.Facility = msh.Field(4).Component(1).String()
	if rec.Facility == "" {
		rec.Facility = msh.Field(4).Component(2).String()
	}

	if f, ok := p.checkHeader(m, env.Sender, rec.Facility); !ok {
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
	v := Decode(m)
	findings = append(findings, p.sharingFindings(m, &v.Patient)...)

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
	rec.Findings = findings
	rec.ACKCode = p.o.ACK.Policy.Code(findings)
	rec.ACK = p.o.ACK.Build(h, rec.ACKCode, findings)
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
		p.findings.WithLabelValues(string(f.Severity)).Inc()
	}
}

// checkHeader applies SPEC §2.3: message type, version, sender authorization, processing ID.
func (p *Pipeline) checkHeader(m *hl7.Message, s *Sender, facility string) (ack.Finding, bool) {
	loc := func(field, comp int) ack.Location {
		return ack.Location{Segment: "MSH", Sequence: 1, Field: field, Component: comp}
	}
	typ, event := m.Get("MSH-9-1"), m.Get("MSH-9-2")
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
	if v := m.Get("MSH-12-1"); v != "2.5.1" {
		return ack.Finding{Rule: "msh-12-version", Location: loc(12, 1), Code: ack.CodeUnsupportedVersion,
			Severity: ack.Error, App: ack.AppTableValueNotFound,
			Text: fmt.Sprintf("HL7 version %q is not supported: send version 2.5.1.", v)}, false
	}
	if m.Get("MSH-10") == "" {
		return ack.Finding{Rule: "msh-10-control-id", Location: loc(10, 0), Code: ack.CodeRequiredFieldMissing,
			Severity: ack.Error, App: ack.AppRequiredDataMissing,
			Text: "MSH-10 (message control ID) is empty: every message needs a unique control ID."}, false
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
	pid := m.Get("MSH-11-1")
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

// sharingFindings tells the sender what became of PD1-12 under the policy (SPEC §2.6).
func (p *Pipeline) sharingFindings(m *hl7.Message, pt *Patient) []ack.Finding {
	if p.o.SharingPolicy != SharingPolicyMA {
		return nil
	}
	seq := 1
	loc := ack.Location{Segment: "PD1", Sequence: seq, Field: 12}
	switch pt.Protection {
	case "Y":
		return []ack.Finding{{Rule: "pd1-12-objection-not-via-hl7", Location: loc, Code: ack.CodeAccepted,
			Severity: ack.Warning, App: ack.AppDataWasIgnored,
			Text: "PD1-12 = Y was recorded but does not change data sharing: a patient's objection must be recorded in the registry with the objection form by an authorized user."}}
	case "N":
		return []ack.Finding{{Rule: "pd1-12-recorded", Location: loc, Code: ack.CodeAccepted,
			Severity: ack.Information, App: ack.AppDataWasIgnored,
			Text: "PD1-12 was recorded; data sharing is managed in the registry."}}
	}
	return nil
}

// Evaluate runs every check of the pipeline on one message without a database and without a
// sender: as if the message came from a site allowed to send for its MSH-4 in the environment its
// MSH-11 names. It returns the record that would be committed, with its findings and ACK; this is
// `vaxgate validate`.
func (p *Pipeline) Evaluate(payload []byte) *Record {
	s := &Sender{SiteCode: "offline", Status: SiteProduction}
	if m, err := hl7.Parse(payload); err == nil {
		msh, _ := m.Find("MSH", 1)
		s.Facilities = []string{msh.Field(4).Component(1).String(), msh.Field(4).Component(2).String()}
		if m.Get("MSH-11-1") == "T" {
			s.Status = SiteTesting
		}
	}
	rec, _ := p.prepare(Envelope{Transport: TransportFile, Sender: s, Payload: payload, ReceivedAt: p.o.Now()})
	return rec
}

// DryRun is a Committer that stores nothing: every record's own ACK is its answer. It serves
// Evaluate's callers, which need a pipeline without a database.
type DryRun struct{}

type done []byte

func (d done) Wait(context.Context) ([]byte, error) { return d, nil }

// Commit returns the record's ACK.
func (DryRun) Commit(rec *Record) Pending { return done(rec.ACK) }
