package validate

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Options configure a Validator.
type Options struct {
	Codes *codes.Set       // CDC code sets; nil = codes.Default()
	Now   func() time.Time // the clock for "in the future" rules; nil = time.Now
	// Severity overrides rule severities for the whole deployment, by rule ID. Ignore ("X") turns
	// a rule off.
	Severity map[string]ack.Severity
	// SenderSeverity overrides severities for one sender (site code), on top of Severity.
	SenderSeverity map[string]map[string]ack.Severity

	// Charset is the character set in which bytes that are not valid UTF-8 are read, in messages
	// whose MSH-18 is empty or says UTF-8 (senders that send Latin-1 without declaring it): an
	// MSH-18 value or IANA name of a single-byte set, such as "windows-1252" or "8859/1". Empty:
	// DefaultCharset. Such messages are warned (charset-undeclared); bytes the fallback does not
	// define either are an error (charset-undecodable).
	Charset string
	// SenderCharset sets the fallback character set of one sender (site code).
	SenderCharset map[string]string

	// Limits on what one message may hold; 0 takes the default. Past them the message is rejected
	// with a finding that says which limit (segments-limit, field-repetitions-limit,
	// findings-limit), and validation costs no more than reading the message once.
	MaxSegments    int // segments per message (DefaultMaxSegments)
	MaxRepetitions int // repetitions of one field (DefaultMaxRepetitions)
	MaxFindings    int // findings per message (DefaultMaxFindings)
}

// The defaults of Options. A VXU holds one patient: a long immunization history is a few hundred
// segments, a field a handful of repetitions.
const (
	DefaultCharset        = "windows-1252"
	DefaultMaxSegments    = 5000
	DefaultMaxRepetitions = 100
	DefaultMaxFindings    = 500
	// MaxRepetitionsLimit is the largest MaxRepetitions may be: ingest.Decode reads no more.
	MaxRepetitionsLimit = 1000
)

// Validator checks parsed VXU messages against the catalogue. It is immutable after New and safe
// for concurrent use.
type Validator struct {
	codes     *codes.Set
	now       func() time.Time
	sev       []ack.Severity            // by rule idx: defaults with the deployment's overrides
	senderSev map[string][]ack.Severity // by site code
	tab       *codeTables
	pool      sync.Pool
	clean     cleanFields // field values the elements pass found nothing in (clean.go)

	fallback       *hl7.Decoder            // deployment's fallback character set
	senderFallback map[string]*hl7.Decoder // by site code
	maxSegments    int
	maxReps        int
	maxFindings    int
}

// New builds a Validator. Overrides naming a rule the catalogue does not have, or a severity
// other than E, W, I or X, are an error that names them all.
func New(o Options) (*Validator, error) {
	v := &Validator{codes: o.Codes, now: o.Now}
	if v.codes == nil {
		v.codes = codes.Default()
	}
	if v.now == nil {
		v.now = time.Now
	}
	var problems []string
	base := make([]ack.Severity, len(catalogue))
	for _, r := range catalogue {
		base[r.idx] = r.Severity
	}
	problems = applyOverrides(base, o.Severity, "", problems)
	v.sev = base
	if len(o.SenderSeverity) > 0 {
		v.senderSev = make(map[string][]ack.Severity, len(o.SenderSeverity))
		for site, over := range o.SenderSeverity {
			t := slices.Clone(base)
			problems = applyOverrides(t, over, site, problems)
			v.senderSev[strings.ToLower(site)] = t
		}
	}
	cs := o.Charset
	if cs == "" {
		cs = DefaultCharset
	}
	var err error
	if v.fallback, err = fallbackCharset(cs); err != nil {
		problems = append(problems, err.Error())
	}
	for site, cs := range o.SenderCharset {
		d, err := fallbackCharset(cs)
		if err != nil {
			problems = append(problems, err.Error()+" (sender "+site+")")
			continue
		}
		if v.senderFallback == nil {
			v.senderFallback = map[string]*hl7.Decoder{}
		}
		v.senderFallback[strings.ToLower(site)] = d
	}
	v.maxSegments = orDefault(o.MaxSegments, DefaultMaxSegments)
	v.maxReps = orDefault(o.MaxRepetitions, DefaultMaxRepetitions)
	v.maxFindings = orDefault(o.MaxFindings, DefaultMaxFindings)
	switch {
	case v.maxSegments < 10:
		problems = append(problems, fmt.Sprintf("MaxSegments %d: a VXU needs at least 10", v.maxSegments))
	case v.maxReps < 1 || v.maxReps > MaxRepetitionsLimit:
		problems = append(problems, fmt.Sprintf("MaxRepetitions %d: want 1 to %d", v.maxReps, MaxRepetitionsLimit))
	case v.maxFindings < 10:
		problems = append(problems, fmt.Sprintf("MaxFindings %d: want at least 10", v.maxFindings))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("validate: severity overrides: %s", strings.Join(problems, "; "))
	}
	v.tab = newCodeTables(v.codes)
	v.pool.New = func() any { return new(run) }
	return v, nil
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// fallbackCharset resolves a configured fallback character set: a single-byte set; "UTF-8" (or
// another name of it) means no fallback, invalid bytes are then undecodable.
func fallbackCharset(name string) (*hl7.Decoder, error) {
	d, err := hl7.DecoderFor(name)
	if err != nil {
		return nil, fmt.Errorf("fallback character set %q: not one this engine reads (e.g. windows-1252, 8859/1, 8859/15)", name)
	}
	if d.IsUTF8() {
		return nil, nil
	}
	return d, nil
}

// MaxSegments returns the segment limit: a message with more segments is rejected as a whole
// (segments-limit), and ingest.DecodeWith does not decode it.
func (v *Validator) MaxSegments() int { return v.maxSegments }

// Fallback returns the fallback character set of a sender (site code, "" for the deployment),
// nil when invalid UTF-8 is not read in any other set.
func (v *Validator) Fallback(site string) *hl7.Decoder {
	if len(v.senderFallback) == 0 {
		return v.fallback
	}
	var buf [64]byte
	if d, ok := v.senderFallback[string(lowerKey(&buf, site))]; ok {
		return d
	}
	return v.fallback
}

// lowerKey returns site in lower case, in buf when it fits: per-sender settings are matched
// without regard to case (configuration files fold keys to lower case), without allocating.
func lowerKey(buf *[64]byte, site string) []byte {
	b := buf[:0]
	for i := 0; i < len(site); i++ {
		c := site[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func applyOverrides(t []ack.Severity, over map[string]ack.Severity, site string, problems []string) []string {
	where := ""
	if site != "" {
		where = " (sender " + site + ")"
	}
	for id, s := range over {
		r := ruleByID(id)
		switch {
		case r == nil:
			problems = append(problems, fmt.Sprintf("unknown rule %q%s", id, where))
		case r.fixed && s != ack.Error:
			problems = append(problems, fmt.Sprintf("rule %q%s: always an error: what it finds cannot be stored or processed (a limit is changed by its option)", id, where))
		case !validSeverity(s):
			problems = append(problems, fmt.Sprintf("rule %q%s: severity %q is not E, W, I or X", id, where, s))
		default:
			t[r.idx] = s
		}
	}
	return problems
}

// Severity returns the severity rule id has for a sender (site code, "" for the deployment
// default), and whether the rule exists.
func (v *Validator) Severity(id, site string) (ack.Severity, bool) {
	r := ruleByID(id)
	if r == nil {
		return "", false
	}
	return v.severities(site)[r.idx], true
}

func (v *Validator) severities(site string) []ack.Severity {
	if len(v.senderSev) == 0 {
		return v.sev
	}
	var buf [64]byte
	if t, ok := v.senderSev[string(lowerKey(&buf, site))]; ok {
		return t
	}
	return v.sev
}

// Validate checks m, a parsed VXU^V04 message from the sender site, and returns its findings in
// message order (nil when there are none). It assumes the pipeline has checked MSH-9 (VXU^V04),
// MSH-11 and MSH-12 and checks everything else.
//
// Validate also gives m the sender's fallback character set (hl7.Message.SetFallback), so that
// what is read from m afterwards (ingest.Decode, the ACK) reads undeclared Latin-1 as the
// findings describe it. It costs time in proportion to the size of m, whatever m holds.
func (v *Validator) Validate(m *hl7.Message, site string) []ack.Finding {
	if m == nil || m.NumSegments() == 0 {
		return nil
	}
	m.SetFallback(v.Fallback(site))
	r := v.pool.Get().(*run)
	r.reset(v, m, v.severities(site))
	if m.NumSegments() > v.maxSegments {
		// Nothing more is read: the message is rejected whatever else it holds.
		r.report(ruleSegmentsLimit, -1, ack.Location{}, args{value: itoa(m.NumSegments()), detail: itoa(v.maxSegments)})
		r.truncated = true
	} else {
		r.structure()
		r.text()
		r.elements()
		r.header()
		r.patient()
		r.vaccinations()
	}
	out := r.finish()
	r.m, r.data = nil, nil // do not keep the message alive from the pool
	v.pool.Put(r)
	return out
}

// item is a finding waiting to be sorted into message order.
type item struct {
	seg int // segment index; NumSegments for findings about the whole message
	f   ack.Finding
}

// args fill a rule's message template.
type args struct {
	at, name, value, detail string
}

// report records a finding of rule at loc in segment seg (its index, or -1 for the message as a
// whole). It is the only place findings are made: severities, groups and texts are uniform.
func (r *run) report(rule *Rule, seg int, loc ack.Location, a args) {
	r.reports++ // before any filtering: the elements pass remembers only fields without problems
	sev := r.sev[rule.idx]
	if sev == Ignore {
		return
	}
	if len(r.items) >= r.v.maxFindings {
		r.dropped++
		r.droppedE = r.droppedE || sev == ack.Error
		return
	}
	group := 0
	if rule.Scope != ScopeMessage && seg >= 0 && seg < len(r.segs) {
		group = r.segs[seg].group
	}
	if seg < 0 {
		seg = len(r.segs)
	}
	if loc.Field > 0 && loc.Rep == 0 {
		loc.Rep = 1 // ERR-2 names the repetition, NIST style: RXA^1^5^1^1
	}
	if a.at == "" {
		a.at = locText(loc)
	}
	r.items = append(r.items, item{seg: seg, f: ack.Finding{
		Rule: rule.ID, Location: loc, Code: rule.Code, Severity: sev, App: rule.App,
		Text: fill(rule.Message, a), Group: group,
	}})
}

// finish sorts the findings into message order and returns a copy the caller owns.
func (r *run) finish() []ack.Finding {
	if r.dropped > 0 {
		// One finding past the limit says how many more there were; the message is rejected.
		r.items = append(r.items, item{seg: len(r.segs) + 1, f: ack.Finding{
			Rule: ruleFindingsLimit.ID, Code: ruleFindingsLimit.Code, Severity: ack.Error, App: ruleFindingsLimit.App,
			Text: fill(ruleFindingsLimit.Message, args{value: itoa(r.v.maxFindings + r.dropped), detail: itoa(r.v.maxFindings)}),
		}})
	}
	if len(r.items) == 0 {
		return nil
	}
	slices.SortStableFunc(r.items, func(a, b item) int {
		if a.seg != b.seg {
			return a.seg - b.seg
		}
		la, lb := a.f.Location, b.f.Location
		for _, d := range [...]int{la.Field - lb.Field, la.Rep - lb.Rep, la.Component - lb.Component, la.Sub - lb.Sub} {
			if d != 0 {
				return d
			}
		}
		return 0
	})
	out := make([]ack.Finding, len(r.items))
	for i := range r.items {
		out[i] = r.items[i].f
	}
	return out
}

// maxText is the length of ERR-8 (TX, 250 in the Z23 profile).
const maxText = 250

// fill substitutes the placeholders of a message template and keeps the result within ERR-8.
func fill(tmpl string, a args) string {
	var b strings.Builder
	b.Grow(len(tmpl) + len(a.value) + len(a.detail) + 16)
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		tmpl = tmpl[i:]
		j := strings.IndexByte(tmpl, '}')
		if j < 0 {
			b.WriteString(tmpl)
			break
		}
		switch tmpl[1:j] {
		case "at":
			b.WriteString(a.at)
		case "name":
			b.WriteString(a.name)
		case "value":
			b.WriteString(a.value)
		case "detail":
			b.WriteString(a.detail)
		default:
			b.WriteString(tmpl[:j+1])
		}
		tmpl = tmpl[j+1:]
	}
	return truncate(b.String(), maxText)
}

// truncate cuts s to at most n bytes on a character boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// locText names a location the way people write it: "RXA-5", "PID-5.2", "PID-3.4.1", with the
// segment occurrence and repetition when they are not the first.
func locText(l ack.Location) string {
	if l.Segment == "" {
		return "the message"
	}
	if l.Field > 0 && l.Sub == 0 && l.Sequence <= 1 && l.Rep <= 1 {
		// The common case (a finding's text names its place): made once, not for every finding.
		if def := segByName(l.Segment); def >= 0 && l.Field <= len(locTexts[def]) {
			t := locTexts[def][l.Field-1]
			if l.Component < len(t) {
				return t[l.Component]
			}
		}
	}
	return buildLocText(l)
}

// buildLocText is locText, made.
func buildLocText(l ack.Location) string {
	if l.Segment == "" {
		return "the message"
	}
	var b strings.Builder
	b.WriteString(l.Segment)
	if l.Field > 0 {
		b.WriteByte('-')
		b.WriteString(itoa(l.Field))
		if l.Component > 0 {
			b.WriteByte('.')
			b.WriteString(itoa(l.Component))
			if l.Sub > 0 {
				b.WriteByte('.')
				b.WriteString(itoa(l.Sub))
			}
		}
	}
	switch {
	case l.Sequence > 1 && l.Rep > 1:
		b.WriteString(" (" + l.Segment + " #" + itoa(l.Sequence) + ", repetition " + itoa(l.Rep) + ")")
	case l.Sequence > 1:
		b.WriteString(" (" + l.Segment + " #" + itoa(l.Sequence) + ")")
	case l.Rep > 1:
		b.WriteString(" (repetition " + itoa(l.Rep) + ")")
	}
	return b.String()
}

// locTexts[def][n-1][k] is locText of component k (0: the field itself) of field n of the first
// segment of definition def, for the components of the field's data type.
var locTexts = func() (t [numSegDefs][][]string) {
	for def := range z22Segments {
		sd := &z22Segments[def]
		t[def] = make([][]string, len(sd.fields))
		for n := range sd.fields {
			comps := 0
			if dt := sd.fields[n].dt; dt > 0 {
				comps = len(z22Datatypes[dt].comps)
			}
			t[def][n] = make([]string, comps+1)
			for k := range t[def][n] {
				t[def][n][k] = buildLocText(ack.Location{Segment: sd.name, Field: n + 1, Component: k})
			}
		}
	}
	return t
}()

// quote renders a value from the message for a finding text: quoted, at most 40 characters,
// control characters replaced, so that a hostile value cannot break the ACK or flood it.
func quote(b []byte) string {
	const max = 40
	var s strings.Builder
	s.WriteByte('\'')
	n := 0
	for len(b) > 0 && n < max {
		c, size := utf8.DecodeRune(b)
		b = b[size:]
		if c < ' ' || c == 0x7f || c == utf8.RuneError {
			c = '?'
		}
		s.WriteRune(c)
		n++
	}
	if len(b) > 0 {
		s.WriteString("...")
	}
	s.WriteByte('\'')
	return s.String()
}
