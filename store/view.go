package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/registry"
)

// The batch's view of the registry (registry.View) is fetched for the whole batch with a few
// queries sent together, in two round trips, before any record is applied (prefetch), with the rows
// locked as the per-record look-ups locked them; the registry then applies every record to it in
// Go, and the store writes what it made of each row, once (writeRegistry). Applying a batch costs
// no round trip per record, and a statement per table, not per row.
//
// The view is complete for what the batch asks: every look-up a record makes (its patient by
// identifier, the candidates of its linking block when that patient is not stored yet, its
// vaccinations by order number or by vaccine and date, the doses of its registry patient that a
// report may merge with — of the same day — and those of the day a vaccination it updates leaves)
// is part of the prefetch, so a miss means the row does not exist.

// The prefetch queries. The registry patients a batch's records are linked or linking to are
// locked (FOR UPDATE), in id order. Their sender patients' rows are read without a row lock: only
// a batch with a record of that sender patient writes its row, and such a batch holds the
// patient's advisory lock from its first statement on (patientLockKey), so a batch that wrote it
// has committed before this one's look-up reads it. The vaccinations are read without row locks: every writer of a vaccination (this writer, for the
// sender patient's own rows and for the merge of a dose's reports) holds the lock of its registry
// patient first, taken by the queries before (a batch that changed them has committed before this
// one's patients query returns, and the vaccinations query, a later statement, sees what it wrote).
// Locking each vaccination row as well would write every one of them (its lock) for nothing.
const (
	// viewSenderColumns are a sender patient's columns in the view, viewRegistryColumns its
	// registry patient's; viewSenderNames name the first in the look-up's parts (found, cands).
	viewSenderColumns = `p.id, p.env, p.organization_id, p.id_value, p.id_authority, p.id_type, p.registry_patient_id,
		p.birth_date, p.match_family, p.match_given, p.sex, p.match_mother, p.match_street, p.postal_code`
	viewSenderNames     = `id, env, org, value, authority, typ, reg, birth, mfamily, mgiven, sex, mmother, mstreet, zip`
	viewRegistryColumns = `r.env, r.family_name, r.given_name, r.middle_name, r.birth_date, r.sex, r.mother_maiden, r.postal_code, r.sharing`
	viewVaccColumns     = `v.id, v.patient_id, v.registry_patient_id, v.env, v.organization_id, v.site_id,
		COALESCE(v.filler_order_id, ''), v.kind, v.dose_key, v.cvx, v.ndc, v.administered_on, v.historical,
		v.info_source, v.amount, v.amount_units, v.lot, v.lot_expiration, v.mvx, v.route, v.body_site,
		v.completion_status, v.action_code, v.refusal_reason, v.deleted, COALESCE(v.merged_into, 0)`
)

// prefetchPatients looks up, in one statement, the stored sender patients of the batch's
// identifiers ($1: found), then the link candidates (cands) of the linking blocks ($2) of
// the records whose sender patient is not among them: only a newly seen patient is linked
// (registry.link), so a block is read only for a record whose identifier the patients table
// does not hold (a patient reported again would read its own row a second time, and lock its
// registry patient twice, for nothing). Which records those are is read from found (a hashed
// NOT IN: no column of either side is ever NULL), not probed in the identifiers' index again.
//
// Then it reads and locks (FOR UPDATE) the registry patients of both parts in one pass, in id
// order: a batch holds none of them while it waits for one with a lower id, so two batches
// cannot wait for each other (TestLookUpLocksRegistryPatientsInOneOrder). Locking found's
// and then cands' registry patients, each part in id order, two batches that each had the
// other's patient as a link candidate could. The registry patients' columns come from the
// locking scan: the latest committed version, once locked. The first column says which part
// a row is from (true: a candidate).
var prefetchPatients = `WITH found (` + viewSenderNames + `) AS MATERIALIZED (
			SELECT ` + viewSenderColumns + `
			FROM unnest($1::batch_patient_key[]) AS k
			JOIN patients p ON p.env = k.env::char(1) AND p.organization_id = k.org AND p.id_value = k.value
				AND p.id_authority = k.authority AND p.id_type = k.typ),
		cands (` + viewSenderNames + `) AS MATERIALIZED (
			SELECT ` + viewSenderColumns + `
			FROM (SELECT DISTINCT b.env, b.birth, b.family, b.given
				FROM unnest($2::batch_link_block[]) AS b
				WHERE (b.env::char(1), b.org, b.value, b.authority, b.typ)
					NOT IN (SELECT f.env, f.org, f.value, f.authority, f.typ FROM found f)) b
			JOIN patients p ON p.env = b.env::char(1) AND p.birth_date = b.birth AND p.match_family = b.family
				AND p.match_given = b.given)
		SELECT u.candidate, u.` + strings.ReplaceAll(viewSenderNames, ", ", ", u.") + `, ` + viewRegistryColumns + `
		FROM (SELECT false AS candidate, * FROM found UNION ALL SELECT true, * FROM cands) u
		JOIN registry_patients r ON r.id = u.reg
		ORDER BY r.id, u.candidate, u.id FOR UPDATE OF r`

var (
	// The vaccinations a batch's records may read or merge with: those of each record's registry
	// patient (its own when its sender patient is stored, else those it may link to: its linking
	// block's) on the dates its orders name (u: the registry patient's doses of that day, which a
	// report may be the same event as, or merge with), and the doses of the day an order number
	// names a vaccination on (f: the dose group a vaccination leaves when an update moves it to
	// another day is merged again) — which include that vaccination itself (its registry patient
	// and day are never NULL), so the rows by order number come with them. The registry reads no
	// other vaccination: its look-ups are by
	// order number, by event (patient, vaccine, day) and by dose group (registry patient, day,
	// dose). Reading every vaccination of the registry patients instead read a patient's whole
	// history on every report: a row per dose ever reported, growing with the registry.
	prefetchRegistryVaccs = `SELECT ` + viewVaccColumns + ` FROM (
			SELECT u.reg, u.day FROM unnest($1::batch_registry_day[]) AS u
			UNION
			SELECT f.registry_patient_id, f.administered_on
			FROM unnest($2::batch_order_number[]) AS k
			JOIN vaccinations f ON f.env = k.env::char(1) AND f.organization_id = k.org AND f.filler_order_id = k.filler
		) g
		JOIN vaccinations v ON v.registry_patient_id = g.reg AND v.administered_on = g.day
		ORDER BY v.id`
)

// prefetch reads recs' registry content into a view, in two round trips on tx: the first sends
// what is queued on tx already with the patient look-ups (by identifier and by linking block,
// with their row locks), the second the vaccinations of the registry patients those returned on
// the days the records' orders name, and those the records name by order number. Statements
// queued after it go out with the next round trip.
func prefetch(ctx context.Context, tx *pipeTx, recs []*ingest.Record) (*registry.View, idCounts, error) {
	v := registry.NewViewFor(len(recs))
	ids, blocks, fillers := lookupKeys(v, recs)
	if ids.n == 0 {
		return v, idCounts{}, nil
	}
	// The registry patient of each stored sender patient, and those of each linking block read.
	keyReg := make(map[registry.PatientKey]int64, len(recs))
	blockRegs := map[registry.BlockKey][]int64{}
	readPatients := func(rows pgx.Rows) error {
		return readViewPatients(v, rows, func(p *registry.Patient, candidate bool) {
			if !candidate {
				keyReg[p.Key] = p.RegID
			} else if b, ok := registry.BlockOf(p.Key.Env, &p.D); ok && !slices.Contains(blockRegs[b], p.RegID) {
				blockRegs[b] = append(blockRegs[b], p.RegID)
			}
		})
	}
	readVaccs := func(rows pgx.Rows) error { return readViewVaccs(v, rows) }
	if err := tx.QueueQuery(ctx, prefetchPatients, readPatients, &ids, &blocks); err != nil {
		return nil, idCounts{}, fmt.Errorf("store: look up patients and link candidates: %w", err)
	}
	if err := tx.Flush(ctx); err != nil {
		return nil, idCounts{}, err
	}
	// Each record's registry patients (its own, or those it may link to) on each day its orders
	// name, each pair once.
	type regDay struct {
		reg int64
		day time.Time
	}
	var days rowArray
	seenDay := map[regDay]bool{}
	// The ids the records are expected to use (drawIDs; idTables' order): a registry patient, a
	// patient and a sharing change per sender patient not stored yet; a sharing change per
	// stored one whose status a report may change (Unknown, or PD1-12 honoured); a vaccination
	// per order.
	var counts idCounts
	newKey := map[registry.PatientKey]bool{}
	for _, rec := range recs {
		k, ok := registry.KeyOf(rec)
		if !ok {
			continue
		}
		counts[3] += len(rec.VXU.Orders)
		var regs []int64
		if reg, stored := keyReg[k]; stored {
			regs = []int64{reg}
			if r := v.Registry(reg); rec.Sharing.HonorPD1 || (r != nil && r.Sharing == "U") {
				counts[2]++
			}
		} else {
			if !newKey[k] {
				newKey[k] = true
				counts[0]++
				counts[1]++
				counts[2]++
			}
			if b, ok := registry.BlockOf(rec.Env, v.Demographics(rec)); ok {
				regs = blockRegs[b]
			}
		}
		if len(regs) == 0 {
			continue
		}
		for i := range rec.VXU.Orders {
			day := registry.ParseDate(rec.VXU.Orders[i].AdministeredAt)
			if day == nil {
				continue
			}
			for _, reg := range regs {
				if rd := (regDay{reg, *day}); !seenDay[rd] {
					seenDay[rd] = true
					days.begin(2)
					days.int8(reg)
					days.date(day)
					days.end()
				}
			}
		}
	}
	if days.n > 0 || fillers.n > 0 {
		if err := tx.QueueQuery(ctx, prefetchRegistryVaccs, readVaccs, &days, &fillers); err != nil {
			return nil, idCounts{}, fmt.Errorf("store: look up vaccinations: %w", err)
		}
	}
	return v, counts, nil
}

// lookupKeys are the keys of recs' look-ups, as arrays of the batch row types (rows.go): their
// sender patients' identifiers, their linking blocks (with the identifier each is for) and their
// order numbers, each once.
func lookupKeys(v *registry.View, recs []*ingest.Record) (ids, blocks, fillers rowArray) {
	seenKey := make(map[registry.PatientKey]bool, len(recs))
	type blockOf struct {
		b registry.BlockKey
		k registry.PatientKey
	}
	seenBlock := make(map[blockOf]bool, len(recs))
	seenFiller := make(map[registry.FillerKey]bool, len(recs))
	for _, rec := range recs {
		k, ok := registry.KeyOf(rec)
		if !ok {
			continue
		}
		if !seenKey[k] {
			seenKey[k] = true
			ids.begin(5)
			ids.text(k.Env)
			ids.int8(k.Org)
			ids.text(k.Value)
			ids.text(k.Authority)
			ids.text(k.IDTyp)
			ids.end()
		}
		d := v.Demographics(rec)
		if b, ok := registry.BlockOf(rec.Env, d); ok && !seenBlock[blockOf{b, k}] {
			seenBlock[blockOf{b, k}] = true
			blocks.begin(8)
			blocks.text(b.Env)
			blocks.date(d.Birth)
			blocks.text(b.Family)
			blocks.text(b.Given)
			blocks.int8(k.Org)
			blocks.text(k.Value)
			blocks.text(k.Authority)
			blocks.text(k.IDTyp)
			blocks.end()
		}
		for i := range rec.VXU.Orders {
			f := registry.OrderNumber(&rec.VXU.Orders[i])
			fk := registry.FillerKey{Env: rec.Env, Org: k.Org, Filler: f}
			if f == "" || seenFiller[fk] {
				continue
			}
			seenFiller[fk] = true
			fillers.begin(3)
			fillers.text(fk.Env)
			fillers.int8(fk.Org)
			fillers.text(f)
			fillers.end()
		}
	}
	return ids, blocks, fillers
}

// readViewPatients and readViewVaccs scan every row into the same variables (their scan targets
// built once per query, not per row: each would otherwise escape to the heap with every row) and
// hand the view a copy of each. Scan sets every field scanned, and pgx gives each string, date
// pointer and slice of a row memory of its own, so the copies share nothing.
func readViewPatients(v *registry.View, rows pgx.Rows, read func(p *registry.Patient, candidate bool)) error {
	var p registry.Patient
	var r registry.RegistryPatient
	var candidate bool
	dest := []any{&candidate, &p.ID, &p.Key.Env, &p.Key.Org, &p.Key.Value, &p.Key.Authority, &p.Key.IDTyp, &p.RegID,
		&p.D.Birth, &p.D.MatchFamily, &p.D.MatchGiven, &p.D.Sex, &p.D.MatchMother, &p.D.MatchStreet, &p.D.Zip,
		&r.Env, &r.Family, &r.Given, &r.Middle, &r.Birth, &r.Sex, &r.Mother, &r.Zip, &r.Sharing}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: read patients: %w", err)
		}
		r.ID = p.RegID
		read(&p, candidate)
		pc, rc := p, r
		v.AddPatient(&pc, &rc)
	}
	return rows.Err()
}

func readViewVaccs(v *registry.View, rows pgx.Rows) error {
	var x registry.Vaccination
	dest := []any{&x.ID, &x.PatientID, &x.RegID, &x.Env, &x.Org, &x.SiteID, &x.Filler, &x.Kind, &x.DoseKey,
		&x.CVX, &x.NDC, &x.Date, &x.Historical, &x.InfoSource, &x.Amount, &x.Units, &x.Lot, &x.LotExpiration,
		&x.MVX, &x.Route, &x.BodySite, &x.Completion, &x.Action, &x.RefusalReason, &x.Deleted, &x.MergedInto}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: read vaccinations: %w", err)
		}
		x.Code = x.CVX
		if x.CVX == "" {
			x.Code = "ndc:" + x.NDC
		}
		xc := x
		v.AddVaccination(&xc)
	}
	return rows.Err()
}
