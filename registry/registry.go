// Package registry holds the registry's meaning (SPEC §2.6): patient identity per sender,
// demographic linking and its review queue, dose identity, RXA-21 A/U/D, the administered-wins
// merge of reports of one dose, refusals and immunity, and the data-sharing policy. It is pure Go
// over a View of the rows a batch of accepted messages touches: the store fills the view from its
// prefetch, applies each record (Registry.Apply), settles the merges (View.Merge) and persists
// what the view says was written. No SQL here; the rules are tested without a database.
package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Registry applies the registry semantics to accepted messages.
type Registry struct {
	// codes maps vaccines to vaccine groups, so that reports of the same dose under a specific and
	// an unspecified CVX (08 and 45, both HepB) are recognised as one dose.
	codes *codes.Set
	// groupKeys is the dose key of each vaccine that belongs to vaccine groups ("group:" and its
	// groups, sorted), by canonical CVX: computed once, not for every order.
	groupKeys map[string]string
}

// New returns a Registry that groups vaccines by c (nil: the code sets embedded in the binary).
func New(c *codes.Set) *Registry {
	if c == nil {
		c = codes.Default()
	}
	r := &Registry{codes: c, groupKeys: map[string]string{}}
	for _, v := range c.Vaccines() {
		if len(v.Groups) > 0 {
			g := slices.Clone(v.Groups)
			slices.Sort(g)
			r.groupKeys[codes.NormalizeCVX(v.CVX)] = "group:" + strings.Join(g, "+")
		}
	}
	return r
}

// Tables whose rows get ids from IDs.
const (
	TableRegistryPatients = "registry_patients"
	TablePatients         = "patients"
	TableSharingChanges   = "sharing_changes"
	TableVaccinations     = "vaccinations"
)

// IDs hands out the ids of new rows (the store draws them ahead, for a whole batch).
type IDs interface {
	Next(table string) (int64, bool)
}

func nextID(ids IDs, table string) (int64, error) {
	id, ok := ids.Next(table)
	if !ok {
		return 0, fmt.Errorf("registry: no id left for a new row of %s", table)
	}
	return id, nil
}

// Apply applies one accepted message (rec, archived as message msgID) to the view: the patient
// as known to the sending organization, its link to a registry patient, the data-sharing status,
// and the vaccinations with their RXA-21 actions. What the rows do not keep as columns (the full
// PID/PD1, next of kin, observations, ORC/RXA/RXR) stays in the archived message they reference.
//
// It returns the warnings the sender must get about what the registry holds: updates and
// deletions of vaccinations it does not hold (0357 code 204), which change nothing.
func (r *Registry) Apply(v *View, ids IDs, rec *ingest.Record, msgID int64) ([]ack.Finding, error) {
	key, ok := KeyOf(rec)
	if !ok {
		return nil, errors.New("registry: patient has no identifier")
	}
	pt := &rec.VXU.Patient
	d := v.Demographics(rec)

	p := v.patients[key]
	if p == nil {
		l := link(v, rec.Env, d)
		var reg *RegistryPatient
		var err error
		if l.regID == 0 {
			if reg, err = createRegistryPatient(v, ids, rec, d, msgID); err != nil {
				return nil, err
			}
		} else {
			if reg, err = updateRegistryPatient(v, ids, rec, d, l.regID, msgID); err != nil {
				return nil, err
			}
		}
		id, err := nextID(ids, TablePatients)
		if err != nil {
			return nil, err
		}
		p = newPatient(msgID)
		p.ID, p.RegID, p.Key, p.New = id, reg.ID, key, true
		p.D, p.Protection = *d, pt.Protection
		v.putPatient(p)
		v.writePatient(p)
		if len(l.candidates) > 0 {
			v.reviews = append(v.reviews, Review{Env: rec.Env, Kind: "possible-duplicate", RegID: reg.ID, PatientID: p.ID,
				Candidates: l.candidateIDs(), Vaccinations: []int64{}, Evidence: map[string]any{"candidates": l.candidates},
				MessageID: msgID})
		}
	} else {
		// The latest report is the sender's current view; every report stays archived, referenced
		// by the row's reports.
		p.D, p.Protection = *d, pt.Protection
		p.Reports = append(p.Reports, msgID)
		v.putPatient(p)
		v.writePatient(p)
		if _, err := updateRegistryPatient(v, ids, rec, d, p.RegID, msgID); err != nil {
			return nil, err
		}
	}
	var unknown []ack.Finding
	for i := range rec.VXU.Orders {
		f, err := r.applyOrder(v, ids, rec, &rec.VXU.Orders[i], p, msgID)
		if err != nil {
			return nil, err
		}
		if f != nil {
			unknown = append(unknown, *f)
		}
	}
	return unknown, nil
}

// createRegistryPatient creates the registry patient of a sender patient that links to none, with
// its initial data-sharing status.
func createRegistryPatient(v *View, ids IDs, rec *ingest.Record, d *Demographics, msgID int64) (*RegistryPatient, error) {
	status, source, reason := initialSharing(rec)
	id, err := nextID(ids, TableRegistryPatients)
	if err != nil {
		return nil, err
	}
	reg := &RegistryPatient{ID: id, Env: rec.Env, Family: d.Name.Family, Given: d.Name.Given, Middle: d.Name.Middle,
		Birth: d.Birth, Sex: d.Sex, Mother: d.Mother, Zip: d.Zip, Sharing: status, New: true}
	v.regs[id] = reg
	v.writeReg(reg)
	return reg, recordSharing(v, ids, rec, id, "", status, source, reason, msgID)
}

// sameRegistryPatient reports whether a and b hold the same values in every column the store
// writes of a registry patient.
func sameRegistryPatient(a, b *RegistryPatient) bool {
	return a.Family == b.Family && a.Given == b.Given && a.Middle == b.Middle && a.Sex == b.Sex &&
		a.Mother == b.Mother && a.Zip == b.Zip && a.Sharing == b.Sharing && a.Env == b.Env &&
		(a.Birth == nil) == (b.Birth == nil) && (a.Birth == nil || a.Birth.Equal(*b.Birth))
}

// updateRegistryPatient brings a registry patient up to date with a later report (the latest
// non-empty value of each field wins; every report stays archived) and applies what the report
// may change of its data-sharing status.
func updateRegistryPatient(v *View, ids IDs, rec *ingest.Record, d *Demographics, regID, msgID int64) (*RegistryPatient, error) {
	reg := v.regs[regID]
	if reg == nil {
		return nil, fmt.Errorf("registry: registry patient %d was not looked up", regID)
	}
	current := reg.Sharing
	next, source, reason := sharingUpdate(rec, current)
	before := *reg
	if d.Name.Family != "" {
		reg.Family = d.Name.Family
	}
	if d.Name.Given != "" {
		// The middle name goes with the given name it was reported with.
		reg.Given, reg.Middle = d.Name.Given, d.Name.Middle
	}
	if d.Birth != nil {
		reg.Birth = d.Birth
	}
	if d.Sex != "" {
		reg.Sex = d.Sex
	}
	if d.Mother != "" {
		reg.Mother = d.Mother
	}
	if d.Zip != "" {
		reg.Zip = d.Zip
	}
	reg.Sharing = next
	// Written only when the report changed it: a patient reported again as the registry already
	// knows them (the usual case) costs the registry patient no write (its row stays locked for
	// the batch, read-only). Its reports are the sender patients' (patients.report_messages).
	if !sameRegistryPatient(&before, reg) {
		v.writeReg(reg)
	}
	if next != current {
		return reg, recordSharing(v, ids, rec, regID, current, next, source, reason, msgID)
	}
	return reg, nil
}

// recordSharing records a status set or changed by a message: in the patient's sharing history
// (old "" is the initial status) and, for a change of an existing status, in the admin audit log
// (the store writes both).
func recordSharing(v *View, ids IDs, rec *ingest.Record, regID int64, old, status, source, reason string, msgID int64) error {
	id, err := nextID(ids, TableSharingChanges)
	if err != nil {
		return err
	}
	v.sharing = append(v.sharing, SharingChange{ID: id, RegID: regID, Old: old, New: status, Source: source, Reason: reason,
		MessageID: msgID, SiteID: rec.Sender.SiteID, SiteCode: rec.Sender.SiteCode})
	return nil
}

// applyOrder applies one order group. Identity (SPEC §2.6): the sender's ORC-3 when present, else
// the sender's patient + vaccine + administration date. RXA-21 D marks the vaccination entered in
// error (never deleted); A on an existing vaccination and U update it, U on an unknown one adds it.
// Reports of the same dose by other senders, or as administered and as historical, are kept as
// rows of their own and merged (Merge).
//
// U naming an order number (ORC-3) the registry does not hold, and D of a vaccination it does not
// hold, change nothing: the sender gets the warning returned (0357 code 204, unknown key
// identifier) rather than believe it updated or deleted a record. (U without an order number of
// an event the registry does not hold adds it: nothing names another record.)
func (r *Registry) applyOrder(v *View, ids IDs, rec *ingest.Record, o *ingest.Order, p *Patient, msgID int64) (*ack.Finding, error) {
	day, ok := parseDate(o.AdministeredAt) // a value: only read, never kept by its address
	if !ok {
		return nil, nil // validation rejects such a group; nothing identifies the event
	}
	date := &day
	action := o.ActionCode
	if action == "" {
		action = "A"
	}
	kind, ok := OrderKind(o)
	if !ok && action != "D" {
		return nil, nil // "no vaccine administered" without evidence of immunity records nothing
	}
	ref := Ref{Message: msgID, Group: int16(o.Group)}
	historical := o.Historical()
	doseKey := r.doseKey(o)
	orgID := rec.Sender.OrganizationID
	filler := OrderNumber(o)
	named := filler // the order number the sender named, kept for the warning

	var cur *Vaccination
	var conflict int64 // another patient's vaccination with this ORC-3
	if filler != "" {
		switch row := v.byOrderNumber(rec.Env, orgID, filler); {
		case row != nil && row.PatientID == p.ID:
			cur = row
		case row != nil:
			// The sender reused an order number for another patient. Moving the dose between
			// children on that evidence alone is too dangerous: record this report without the
			// order number and leave the pair for review.
			conflict, filler = row.ID, ""
		}
	}
	if cur == nil {
		// The sender's own earlier report of this event without (another) order number. An
		// administered and a historical report are separate reports of the dose and are merged
		// instead; a deletion takes either, preferring the same kind of report.
		cur = v.byEvent(p.ID, kind, *date, vaccineCode(o), filler != "", historical, action != "D")
	}
	// (U of an order number another patient holds is recorded without it, for review, below.)
	if cur == nil && (action == "D" || (action == "U" && named != "" && conflict == 0)) {
		return unknownKey(o, action, named, conflict != 0), nil // the message is archived
	}
	if cur != nil && cur.Kind == KindDose {
		// The dose group the row leaves (or stays in) is merged again.
		v.touched[doseGroup{reg: cur.RegID, date: cur.Date, key: cur.DoseKey}] = true
	}
	switch {
	case action == "D":
		cur.Deleted, cur.DeletedNow, cur.MergedInto, cur.Action = true, true, 0, "D"
		cur.Reports = append(cur.Reports, ref)
		v.writeVacc(cur)
		return nil, nil
	case cur != nil:
		r.setFields(cur, rec, o, kind, *date, historical, doseKey, action, nil)
		cur.Deleted, cur.DeletedNow, cur.MergedInto = false, false, 0
		cur.Reports = append(cur.Reports, ref)
		v.setFiller(cur, filler)
		v.writeVacc(cur)
	default:
		id, err := nextID(ids, TableVaccinations)
		if err != nil {
			return nil, err
		}
		nv := &newVaccination{refs: [1]Ref{ref}}
		cur = &nv.v
		*cur = Vaccination{ID: id, PatientID: p.ID, RegID: p.RegID, Env: rec.Env, Org: orgID, Filler: filler, New: true}
		r.setFields(cur, rec, o, kind, *date, historical, doseKey, action, &nv.exp)
		cur.Reports = nv.refs[:1:1]
		v.addVacc(cur)
		v.writeVacc(cur)
		if conflict != 0 {
			v.reviews = append(v.reviews, Review{Env: rec.Env, Kind: "order-number-conflict", RegID: p.RegID, PatientID: p.ID,
				Candidates: []int64{}, Vaccinations: []int64{conflict, id},
				Evidence: map[string]string{"order_number": "ORC-3 reused for another patient"}, MessageID: msgID})
		}
	}
	if kind == KindDose {
		v.touched[doseGroup{reg: cur.RegID, date: *date, key: doseKey}] = true
	}
	return nil, nil
}

// newPatient is a new Patient whose Reports are msgID, made in one allocation.
func newPatient(msgID int64) *Patient {
	np := &struct {
		p       Patient
		reports [1]int64
	}{reports: [1]int64{msgID}}
	np.p.Reports = np.reports[:1:1]
	return &np.p
}

// newVaccination is a new Vaccination with room for its first report and its lot's expiration
// date, made in one allocation.
type newVaccination struct {
	v    Vaccination
	refs [1]Ref
	exp  time.Time
}

// setFields sets what a report says of a vaccination (its latest report wins). exp, when not nil,
// is where the lot's expiration date is kept (memory of a new vaccination that nothing else
// references yet); nil, it gets an allocation of its own.
func (r *Registry) setFields(x *Vaccination, rec *ingest.Record, o *ingest.Order, kind string, date time.Time, historical bool, doseKey, action string, exp *time.Time) {
	x.SiteID = rec.Sender.SiteID
	x.Kind, x.Code, x.CVX, x.NDC, x.Date, x.Historical = kind, vaccineCode(o), o.CVX, o.NDC, date, historical
	x.InfoSource, x.Amount, x.Units, x.Lot = o.InfoSource.Code, o.Amount, o.Units.Code, firstLot(o)
	if t, ok := parseDate(o.LotExpiration); !ok {
		x.LotExpiration = nil
	} else if exp != nil {
		*exp = t
		x.LotExpiration = exp
	} else {
		own := t // declared here, so that only this case allocates
		x.LotExpiration = &own
	}
	x.MVX, x.Route, x.BodySite, x.Completion = o.Manufacturer.Code, o.Route.Code, o.BodySite.Code, o.CompletionStatus
	x.Action, x.RefusalReason, x.DoseKey = action, o.RefusalReason.Code, doseKey
}

// Merge settles the reports of every dose the batch touched (registry patient, administration
// date, dose key): the survivor is the earliest administered report, else the earliest historical
// one; the other historical reports are merged into it. Administered reports stay separate: two
// organizations both saying they gave the dose is for a person to sort out, not to hide. The view
// holds every current dose of the batch's registry patients (their rows locked), so the merge is
// computed here; only rows whose merged_into changes are written.
func (v *View) Merge() {
	for g := range v.touched {
		var members []*Vaccination
		var survivor *Vaccination
		for _, x := range v.byReg[g.reg] {
			if x.Kind != KindDose || x.Deleted || !x.Date.Equal(g.date) || x.DoseKey != g.key {
				continue
			}
			members = append(members, x)
			if survivor == nil || (x.Historical != survivor.Historical && !x.Historical) ||
				(x.Historical == survivor.Historical && x.ID < survivor.ID) {
				survivor = x
			}
		}
		for _, x := range members {
			into := int64(0)
			if x.Historical && x != survivor {
				into = survivor.ID
			}
			if x.MergedInto != into {
				x.MergedInto = into
				v.writeVacc(x)
			}
		}
	}
	clear(v.touched)
}
