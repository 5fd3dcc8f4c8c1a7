package registry

import (
	"cmp"
	"slices"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
)

// View is what the records of one batch read of the registry, and what they make of it. The store
// fills it, before any record is applied, with the rows the batch may read or change — the sender
// patients the records name, the patients of the linking blocks they fall in, the registry
// patients of both, and every vaccination of those registry patients and of the order numbers the
// records name — locked as a record-by-record write would lock them (AddPatient, AddVaccination).
// A miss in the view therefore means the row does not exist.
//
// Applying a record (Registry.Apply) changes the view's rows in place, as the record's writes
// would: the next record reads its batch-mates' writes exactly as it would have read them from the
// database. After the batch, Merge settles the reports of the doses the batch touched, and the
// store writes the final state of every row the batch created or changed (Written), once, whatever
// number of records changed it.
type View struct {
	patients map[PatientKey]*Patient
	blocks   map[BlockKey][]*Patient // patients by linking block and given name (a handful each)
	regs     map[int64]*RegistryPatient
	fillers  map[FillerKey]*Vaccination
	vaccs    map[int64][]*Vaccination // by sender patient
	byReg    map[int64][]*Vaccination // by registry patient
	seen     map[int64]bool           // vaccination ids in the view
	demo     map[*ingest.Record]*Demographics
	touched  map[doseGroup]bool

	// What the batch wrote, each row once, in the order first written.
	regsOut     []*RegistryPatient
	patientsOut []*Patient
	vaccsOut    []*Vaccination
	sharing     []SharingChange
	reviews     []Review
}

// PatientKey identifies a sender patient: environment, organization and PID-3.
type PatientKey struct {
	Env                     string
	Org                     int64
	Value, Authority, IDTyp string
}

// BlockKey is a linking block (environment, birth date, normalised family name) narrowed by the
// normalised given name: the candidates link compares.
type BlockKey struct {
	Env           string
	Birth         string // YYYY-MM-DD
	Family, Given string
}

// FillerKey identifies a vaccination by the sender's order number (ORC-3).
type FillerKey struct {
	Env    string
	Org    int64
	Filler string
}

// RegistryPatient is a row of registry_patients: the person, as the registry knows them.
type RegistryPatient struct {
	ID                    int64
	Env                   string
	Family, Given, Middle string
	Birth                 *time.Time
	Sex, Mother, Zip      string
	Sharing               string // Y, N or U
	// New: created by this batch (inserted; else updated).
	New     bool
	written bool
}

// Patient is a row of patients: a sender's patient. For a row read from the database, D holds
// what linking compares (Birth, MatchFamily, MatchGiven, Sex, MatchMother, MatchStreet, Zip);
// once written by the batch (New or Changed), all of it, from the latest report.
type Patient struct {
	ID, RegID  int64
	Key        PatientKey
	D          Demographics
	Protection string
	// Reports are the messages this batch appended to the row's report_messages, in order.
	Reports []int64
	New     bool
	written bool

	block    BlockKey
	hasBlock bool
}

// Ref is one report of a vaccination: a message and the order group in it.
type Ref struct {
	Message int64
	Group   int16
}

// Vaccination is a row of vaccinations: a vaccination event as one sender reported it.
type Vaccination struct {
	ID, PatientID, RegID int64
	Env                  string
	Org, SiteID          int64
	Filler               string // "" when it has none
	Kind, DoseKey        string
	Code                 string // the sender-level identity of the vaccine: CVX, else "ndc:" + NDC
	CVX, NDC             string
	Date                 time.Time
	Historical           bool
	InfoSource           string
	Amount, Units, Lot   string
	LotExpiration        *time.Time
	MVX, Route, BodySite string
	Completion, Action   string
	RefusalReason        string
	Deleted              bool
	// DeletedNow: marked deleted by this batch (deleted_at is the batch's time).
	DeletedNow bool
	MergedInto int64 // 0: not merged
	// Reports are the reports this batch appended to the row's report_messages/report_groups.
	Reports []Ref
	New     bool
	written bool
}

// SharingChange is a data-sharing status set (Old "": the initial status) or changed by a
// message, for the patient's sharing history and, for a change, the admin audit log.
type SharingChange struct {
	ID, RegID      int64
	Old, New       string
	Source, Reason string
	MessageID      int64
	SiteID         int64
	SiteCode       string
}

// Review is an item for registry staff opened by a message.
type Review struct {
	Env, Kind    string
	RegID        int64
	PatientID    int64
	Candidates   []int64
	Vaccinations []int64
	Evidence     any
	MessageID    int64
}

type doseGroup struct {
	reg  int64
	date time.Time
	key  string
}

// NewView returns an empty view.
func NewView() *View { return NewViewFor(0) }

// NewViewFor returns an empty view for a batch of n records, its tables sized for them: growing
// nine tables from nothing, entry by entry, cost more than the rest of applying a batch of new
// patients.
func NewViewFor(n int) *View {
	return &View{
		patients: make(map[PatientKey]*Patient, n),
		blocks:   make(map[BlockKey][]*Patient, n),
		regs:     make(map[int64]*RegistryPatient, n),
		fillers:  make(map[FillerKey]*Vaccination, n),
		vaccs:    make(map[int64][]*Vaccination, n),
		byReg:    make(map[int64][]*Vaccination, n),
		seen:     make(map[int64]bool, 2*n),
		demo:     make(map[*ingest.Record]*Demographics, n),
		touched:  make(map[doseGroup]bool, n),
	}
}

// KeyOf is the sender patient a record is about; ok is false for a record that stores no
// registry content (no VXU, no sender, not accepted, no PID-3 value).
func KeyOf(rec *ingest.Record) (PatientKey, bool) {
	if rec.VXU == nil || rec.Sender == nil || !rec.ResendKey {
		return PatientKey{}, false
	}
	id := rec.VXU.Patient.PrimaryID()
	if id.Value == "" {
		return PatientKey{}, false
	}
	return PatientKey{Env: rec.Env, Org: rec.Sender.OrganizationID, Value: id.Value, Authority: id.Authority, IDTyp: id.Type}, true
}

// BlockOf is the linking block of demographics d in env; ok is false when d cannot be linked
// (no birth date, family or given name).
func BlockOf(env string, d *Demographics) (BlockKey, bool) {
	if d.Birth == nil || d.MatchFamily == "" || d.MatchGiven == "" {
		return BlockKey{}, false
	}
	day := d.birthDay
	if d.birthDayOf != d.Birth || day == "" {
		day = dateOnly(*d.Birth)
	}
	return BlockKey{Env: env, Birth: day, Family: d.MatchFamily, Given: d.MatchGiven}, true
}

// dateOnly is t.Format(time.DateOnly), written directly for the years of four digits.
func dateOnly(t time.Time) string {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format(time.DateOnly)
	}
	var buf [10]byte
	b := appendDigits(buf[:0], y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(m), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	return string(b)
}

// Demographics are rec's identifying fields, normalised once for the batch.
func (v *View) Demographics(rec *ingest.Record) *Demographics {
	if d, ok := v.demo[rec]; ok {
		return d
	}
	d := DemographicsOf(&rec.VXU.Patient)
	v.demo[rec] = &d
	return &d
}

// AddPatient adds a sender patient read from the database, with its registry patient (a sender
// patient read twice, or a registry patient shared by several, is kept once).
func (v *View) AddPatient(p *Patient, reg *RegistryPatient) {
	if _, ok := v.regs[reg.ID]; !ok {
		v.regs[reg.ID] = reg
	}
	if _, ok := v.patients[p.Key]; ok {
		return
	}
	v.putPatient(p)
}

// AddVaccination adds a vaccination read from the database (one read twice is kept once).
func (v *View) AddVaccination(x *Vaccination) {
	if v.seen[x.ID] {
		return
	}
	v.addVacc(x)
}

// Registry returns the registry patient id, nil when the view does not hold it.
func (v *View) Registry(id int64) *RegistryPatient { return v.regs[id] }

// Written are the rows the batch created or changed, each once, in the order first written, and
// the sharing changes and reviews it made, in order: what the store persists.
func (v *View) Written() (regs []*RegistryPatient, patients []*Patient, vaccs []*Vaccination, sharing []SharingChange, reviews []Review) {
	return v.regsOut, v.patientsOut, v.vaccsOut, v.sharing, v.reviews
}

func (v *View) writeReg(r *RegistryPatient) {
	if !r.written {
		r.written = true
		v.regsOut = append(v.regsOut, r)
	}
}

func (v *View) writePatient(p *Patient) {
	if !p.written {
		p.written = true
		v.patientsOut = append(v.patientsOut, p)
	}
}

func (v *View) writeVacc(x *Vaccination) {
	if !x.written {
		x.written = true
		v.vaccsOut = append(v.vaccsOut, x)
	}
}

// putPatient adds p (a new patient, or one read) or files it again under its current block.
func (v *View) putPatient(p *Patient) {
	if p.hasBlock {
		v.blocks[p.block] = slices.DeleteFunc(v.blocks[p.block], func(x *Patient) bool { return x.ID == p.ID })
	}
	p.block, p.hasBlock = BlockOf(p.Key.Env, &p.D)
	v.patients[p.Key] = p
	if p.hasBlock {
		// One entry per patient id (as the map it replaces had): a patient filed again under the
		// same block replaces its entry.
		ps := slices.DeleteFunc(v.blocks[p.block], func(x *Patient) bool { return x.ID == p.ID })
		v.blocks[p.block] = append(ps, p)
	}
}

// candidates are the patients of d's block with d's given name, by registry patient and id.
func (v *View) candidates(env string, d *Demographics) []*Patient {
	b, ok := BlockOf(env, d)
	if !ok || len(v.blocks[b]) == 0 {
		return nil
	}
	out := make([]*Patient, 0, len(v.blocks[b]))
	for _, p := range v.blocks[b] {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Patient) int {
		return cmp.Or(cmp.Compare(a.RegID, b.RegID), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (v *View) addVacc(x *Vaccination) {
	v.seen[x.ID] = true
	v.vaccs[x.PatientID] = append(v.vaccs[x.PatientID], x)
	v.byReg[x.RegID] = append(v.byReg[x.RegID], x)
	if x.Filler != "" {
		v.fillers[FillerKey{Env: x.Env, Org: x.Org, Filler: x.Filler}] = x
	}
}

// byOrderNumber is the vaccination the sender numbered filler, nil when there is none.
func (v *View) byOrderNumber(env string, org int64, filler string) *Vaccination {
	return v.fillers[FillerKey{Env: env, Org: org, Filler: filler}]
}

// byEvent is the sender's earlier report of the event (patient, kind, date, vaccine) that is not
// deleted and, when the report has an order number, has none itself; of the same source
// (administered or historical) unless sameSource is false, then preferring it; the earliest.
func (v *View) byEvent(patientID int64, kind string, date time.Time, code string, hasFiller, historical, sameSource bool) *Vaccination {
	var best *Vaccination
	for _, x := range v.vaccs[patientID] {
		if x.Kind != kind || !x.Date.Equal(date) || x.Code != code || x.Deleted || (hasFiller && x.Filler != "") {
			continue
		}
		if sameSource && x.Historical != historical {
			continue
		}
		switch {
		case best == nil:
			best = x
		case (x.Historical == historical) != (best.Historical == historical):
			if x.Historical == historical {
				best = x
			}
		case x.ID < best.ID:
			best = x
		}
	}
	return best
}

// setFiller records an order number a vaccination took (it keeps its first).
func (v *View) setFiller(x *Vaccination, filler string) {
	if x.Filler != "" || filler == "" {
		return
	}
	x.Filler = filler
	v.fillers[FillerKey{Env: x.Env, Org: x.Org, Filler: filler}] = x
}
