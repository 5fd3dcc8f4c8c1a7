package main

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/registry"
	"github.com/vaxgate/vaxgate/store"
)

// Read-back verification (--verify-records N): after a run, a random sample of the patients the
// run reported is read back through the store's read API (RegistryPatientID, PatientRecord) and
// compared, field by field, with what was sent, decoded by the project's own parser and decoder.
//
// The sample is drawn so that the expected record follows from the run's traffic alone: patients
// the run reported in exactly one message, answered AA, or AE with warnings only (an AE with an
// error dropped an order group; a warning of an unknown key, 0357 code 204, means an update that
// changed nothing). What the record shows of that patient is then that message: the sender
// patient's demographics, next of kin and patient-level observations are its PID/PD1, NK1 and
// OBX; each of its orders is a vaccination with that order number whose columns, details and
// observations are its ORC/RXA/RXR/OBX. The registry-level demographics (the latest non-empty
// values of any sender) are compared when the patient has no other sender patient. Earlier runs on
// the same database may have reported the same patient identifier: their vaccinations carry other
// order numbers, and this run's message is the latest report. When an earlier run reported the same
// dose, the registry merges this run's historical report into it (reconcileDose): the record then
// shows it among that dose's merged reports, where its vaccine, kind and source are compared, and
// it is counted apart.
//
// What the run sent is not kept: each connection's generator is deterministic, so the sampled
// messages are generated again after the run. During the run the bench keeps 9 bytes per message
// (a hash of the patient identifier and the ACK's class).

// Classes of an ACK for the sample.
const (
	ackNone      byte = iota // not answered
	ackAccepted              // AA
	ackWarnings              // AE with warnings only: every order group stored
	ackAmbiguous             // AE with an error or an unknown-key warning, AR, anything else
)

const (
	maxDiffPrint  = 10 // difference lines printed
	maxDiffRecord = 20 // differences collected per record
)

// sentLog is what one connection of the run remembers for the sample: per message (by its index
// on the connection) the hash of its patient identifier and the class of its ACK.
type sentLog struct {
	mu       sync.Mutex // the writer's goroutine appends patients while ACKs arrive
	patients []uint64
	acks     []byte
}

var patientSeed = maphash.MakeSeed()

func (l *sentLog) sent(patientID string) {
	h := maphash.String(patientSeed, patientID)
	l.mu.Lock()
	l.patients = append(l.patients, h)
	l.mu.Unlock()
}

func (l *sentLog) acked(i int, m *hl7.Message, code string) {
	class := ackAmbiguous
	switch code {
	case ack.AA:
		class = ackAccepted
	case ack.AE:
		class = ackWarnings
		for _, s := range m.Segments() {
			if s.Is("ERR") && (s.Field(4).String() == string(ack.Error) ||
				s.Field(3).Component(1).String() == strconv.Itoa(int(ack.CodeUnknownKey))) {
				class = ackAmbiguous
				break
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.acks) <= i {
		l.acks = append(l.acks, ackNone)
	}
	l.acks[i] = class
}

// sampled is one message of the sample: connection, index on it, its position in the sample.
type sampled struct {
	conn, index, n int
	msg            []byte
}

// recordsResult is what the verification found.
type recordsResult struct {
	candidates int // patients reported once and acknowledged
	sampled    int
	identical  int
	merged     int      // doses shown merged into another report of the same dose
	diffs      []string // the first differences: sample number and field path, never values
	ndiffs     int      // differences found in all
	differing  int      // records with a difference
}

func (r *recordsResult) print(w io.Writer) {
	fmt.Fprintf(w, "records: %d sampled, %d identical (of %d patients reported once in this run and acknowledged)\n",
		r.sampled, r.identical, r.candidates)
	if r.merged > 0 {
		fmt.Fprintf(w, "records: %d sampled doses are shown merged into another report of the same dose (their columns compared)\n", r.merged)
	}
	for _, d := range r.diffs {
		fmt.Fprintf(w, "records: %s\n", d)
	}
	if r.ndiffs > len(r.diffs) {
		fmt.Fprintf(w, "records: (first %d of %d differences shown, in %d records)\n", len(r.diffs), r.ndiffs, r.differing)
	}
}

// pickSample draws up to n of the messages whose patient the run reported once and whose ACK
// stored all of it.
func pickSample(logs []*sentLog, n int, seed uint64) (sample []sampled, candidates int) {
	count := map[uint64]int32{}
	for _, l := range logs {
		l.mu.Lock()
		for _, h := range l.patients {
			count[h]++
		}
		l.mu.Unlock()
	}
	var pool []sampled
	for c, l := range logs {
		l.mu.Lock()
		for i, h := range l.patients {
			if count[h] == 1 && i < len(l.acks) && (l.acks[i] == ackAccepted || l.acks[i] == ackWarnings) {
				pool = append(pool, sampled{conn: c, index: i})
			}
		}
		l.mu.Unlock()
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	n = min(n, len(pool))
	for i := 0; i < n; i++ { // a partial Fisher–Yates shuffle: the first n are a uniform sample
		j := i + r.IntN(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	sample = pool[:n]
	for i := range sample {
		sample[i].n = i + 1
	}
	return sample, len(pool)
}

// regenerate fills in the sampled messages by running each connection's generator again.
func regenerate(o benchOptions, patients int, now time.Time, sample []sampled) {
	byConn := map[int][]*sampled{}
	for i := range sample {
		s := &sample[i]
		byConn[s.conn] = append(byConn[s.conn], s)
	}
	for c, ss := range byConn {
		slices.SortFunc(ss, func(a, b *sampled) int { return a.index - b.index })
		gen := benchGenerator(o, c, patients, now)
		next := 0
		for _, s := range ss {
			for ; next < s.index; next++ {
				gen.Next()
			}
			s.msg = gen.Next()
			next++
		}
	}
}

// verifyRecords runs the read-back verification of a finished run against the engine's database.
func verifyRecords(ctx context.Context, o benchOptions, res *benchResult, url string) (*recordsResult, error) {
	sample, candidates := pickSample(res.logs, o.verifyRecords, o.seed)
	out := &recordsResult{candidates: candidates, sampled: len(sample)}
	if len(sample) == 0 {
		return out, errors.New("bench: verify-records: no patient was reported once in this run and acknowledged: nothing to sample")
	}
	regenerate(o, res.patients, res.now, sample)

	db, err := store.Open(ctx, url, store.WithMaxConns(2), store.WithApplicationName("vaxgate-bench"))
	if err != nil {
		return out, fmt.Errorf("bench: verify-records: %w", err)
	}
	defer db.Close()
	// The engine knows the bench's connections by their source address, as it knew them during the run.
	sender, err := db.MLLPSender(ctx, res.localAddr, "")
	if err != nil {
		return out, fmt.Errorf("bench: verify-records: the sender of this run's connections: %w", err)
	}
	env := "P"
	if sender.Status == ingest.SiteTesting {
		env = "T"
	}
	resolver, err := validate.New(validate.Options{Codes: codes.Default()})
	if err != nil {
		return out, fmt.Errorf("bench: verify-records: %w", err)
	}
	for i := range sample {
		s := &sample[i]
		m, err := hl7.Parse(s.msg)
		if err != nil {
			return out, fmt.Errorf("bench: verify-records: sample %d does not parse: %w", s.n, err)
		}
		sent := ingest.DecodeWith(m, resolver)
		var rec *store.PatientRecord
		regID, err := db.RegistryPatientID(ctx, env, sender.OrganizationID, sent.Patient.PrimaryID())
		if err == nil {
			rec, err = db.PatientRecord(ctx, regID)
		}
		var diffs []string
		merged := 0
		switch {
		case errors.Is(err, store.ErrPatientNotFound):
			diffs = []string{"the patient is not in the registry"}
		case err != nil:
			return out, fmt.Errorf("bench: verify-records: sample %d: %w", s.n, err)
		default:
			diffs, merged = compareRecord(sent, rec, sender, env)
		}
		out.merged += merged
		if len(diffs) == 0 {
			out.identical++
			continue
		}
		out.differing++
		out.ndiffs += len(diffs)
		ctl := m.Get("MSH-10") // a control ID, never patient data
		for _, d := range diffs {
			if len(out.diffs) < maxDiffPrint {
				out.diffs = append(out.diffs, fmt.Sprintf("sample %d (message %s): %s", s.n, ctl, d))
			}
		}
	}
	if out.differing > 0 {
		return out, fmt.Errorf("bench: %d of %d sampled patient records differ from what was sent", out.differing, out.sampled)
	}
	return out, nil
}

// compareRecord compares a patient's record with the one message that reported them, and returns
// the differences (field paths, never values) and how many of its doses the record shows merged
// into another report of the same dose.
func compareRecord(sent *ingest.VXU, rec *store.PatientRecord, sender *ingest.Sender, env string) (diffs []string, merged int) {
	d := &differ{}
	id := sent.Patient.PrimaryID()
	var sp *store.SenderPatient
	for i := range rec.Senders {
		if s := &rec.Senders[i]; s.OrganizationID == sender.OrganizationID && s.Identifier == id {
			sp = s
		}
	}
	if sp == nil {
		return []string{"Senders: the sender patient is missing"}, 0
	}
	d.check("Env", env, rec.Env)
	d.check("Senders[sender].Demographics", sent.Patient, sp.Demographics)
	d.check("Senders[sender].Protection", sent.Patient.Protection, sp.Protection)
	d.check("Senders[sender].NextOfKin", sent.NextOfKin, sp.NextOfKin)
	d.check("Senders[sender].Observations", sent.Observations, sp.Observations)
	if len(rec.Senders) == 1 {
		// The registry's own demographics are the latest non-empty value of each field of any
		// sender: with one sender, this message's.
		name := sent.Patient.LegalName()
		d.check("FamilyName", name.Family, rec.FamilyName)
		d.check("GivenName", name.Given, rec.GivenName)
		d.check("MiddleName", name.Middle, rec.MiddleName)
		d.check("BirthDate", registry.ParseDate(sent.Patient.BirthDate), rec.BirthDate)
		d.check("Sex", sent.Patient.Sex, rec.Sex)
		d.check("MotherMaiden", sent.Patient.MotherMaiden.Family, rec.MotherMaiden)
		d.check("PostalCode", registry.DemographicsOf(&sent.Patient).Zip, rec.PostalCode)
	}
	for i := range sent.Orders {
		o := &sent.Orders[i]
		path := "Vaccinations[order " + strconv.Itoa(o.Group) + "]"
		kind, recorded := registry.OrderKind(o)
		date := registry.ParseDate(o.AdministeredAt)
		if !recorded || date == nil || o.ActionCode == "D" {
			continue // such a group records nothing (or removes what it names)
		}
		number := registry.OrderNumber(o)
		var v *store.Vaccination
		for j := range rec.Vaccinations {
			c := &rec.Vaccinations[j]
			if c.Source.PatientID != sp.ID {
				continue
			}
			if number != "" && c.OrderNumber == number ||
				number == "" && c.OrderNumber == "" && c.AdministeredOn.Equal(*date) && c.Kind == kind && c.CVX == o.CVX {
				v = c
			}
		}
		if v == nil {
			if mergedDose(rec, o, sp.ID, *date) {
				merged++
				continue
			}
			d.add(path + ": missing")
			continue
		}
		d.check(path+".Kind", kind, v.Kind)
		d.check(path+".CVX", o.CVX, v.CVX)
		d.check(path+".NDC", o.NDC, v.NDC)
		d.check(path+".AdministeredOn", *date, v.AdministeredOn)
		d.check(path+".Historical", o.Historical(), v.Historical)
		d.check(path+".InfoSource", o.InfoSource.Code, v.InfoSource)
		d.check(path+".Amount", o.Amount, v.Amount)
		d.check(path+".AmountUnits", o.Units.Code, v.AmountUnits)
		lot := ""
		if len(o.Lots) > 0 {
			lot = o.Lots[0]
		}
		d.check(path+".Lot", lot, v.Lot)
		d.check(path+".LotExpiration", registry.ParseDate(o.LotExpiration), v.LotExpiration)
		d.check(path+".MVX", o.Manufacturer.Code, v.MVX)
		d.check(path+".Route", o.Route.Code, v.Route)
		d.check(path+".BodySite", o.BodySite.Code, v.BodySite)
		d.check(path+".CompletionStatus", o.CompletionStatus, v.CompletionStatus)
		action := o.ActionCode
		if action == "" {
			action = "A"
		}
		d.check(path+".ActionCode", action, v.ActionCode)
		d.check(path+".RefusalReason", o.RefusalReason.Code, v.RefusalReason)
		d.check(path+".Source.OrganizationID", sender.OrganizationID, v.Source.OrganizationID)
		d.check(path+".Source.SiteID", sender.SiteID, v.Source.SiteID)
		d.check(path+".Source.SiteCode", sender.SiteCode, v.Source.SiteCode)
		d.check(path+".Reports", 1, v.Reports)
		details := *o
		details.Observations = nil
		d.check(path+".Details", details, v.Details)
		d.check(path+".Observations", o.Observations, v.Observations)
	}
	return d.out, merged
}

// mergedDose reports whether the record shows the order as a report merged into another report
// of the same dose (same day) by this sender patient, with its vaccine and kind of report.
func mergedDose(rec *store.PatientRecord, o *ingest.Order, senderPatient int64, date time.Time) bool {
	for _, v := range rec.Vaccinations {
		if !v.AdministeredOn.Equal(date) {
			continue
		}
		for _, m := range v.Merged {
			if m.Source.PatientID == senderPatient && m.CVX == o.CVX && m.Historical == o.Historical() &&
				m.InfoSource == o.InfoSource.Code {
				return true
			}
		}
	}
	return false
}

// differ collects the paths of the fields where what was read back differs from what was sent.
// It compares field by field (structs, slices, pointers, times); a nil slice equals an empty
// one, since the record's JSON shape may give either. It never records a value.
type differ struct{ out []string }

func (d *differ) add(s string) {
	if len(d.out) < maxDiffRecord {
		d.out = append(d.out, s)
	}
}

func (d *differ) check(path string, want, got any) {
	d.value(path, reflect.ValueOf(want), reflect.ValueOf(got))
}

var timeType = reflect.TypeOf(time.Time{})

func (d *differ) value(path string, w, g reflect.Value) {
	if w.Type() != g.Type() {
		d.add(path + " has another type")
		return
	}
	switch w.Kind() {
	case reflect.Pointer:
		switch {
		case w.IsNil() && g.IsNil():
		case w.IsNil():
			d.add(path + " is set, nothing was sent")
		case g.IsNil():
			d.add(path + " is missing")
		default:
			d.value(path, w.Elem(), g.Elem())
		}
	case reflect.Struct:
		if w.Type() == timeType {
			if !w.Interface().(time.Time).Equal(g.Interface().(time.Time)) {
				d.add(path + " differs")
			}
			return
		}
		for i := 0; i < w.NumField(); i++ {
			if f := w.Type().Field(i); f.IsExported() {
				d.value(path+"."+f.Name, w.Field(i), g.Field(i))
			}
		}
	case reflect.Slice:
		if w.Len() != g.Len() {
			d.add(fmt.Sprintf("%s has %d entries, %d were sent", path, g.Len(), w.Len()))
			return
		}
		for i := 0; i < w.Len(); i++ {
			d.value(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i))
		}
	case reflect.String:
		if w.String() != g.String() {
			d.add(path + " differs")
		}
	case reflect.Bool:
		if w.Bool() != g.Bool() {
			d.add(path + " differs")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if w.Int() != g.Int() {
			d.add(path + " differs")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if w.Uint() != g.Uint() {
			d.add(path + " differs")
		}
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			d.add(path + " differs")
		}
	}
}

// localAddrOf is the source address of a connection, as the engine sees it.
func localAddrOf(a interface{ String() string }) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
