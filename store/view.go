package store

import (
	"context"
	"fmt"

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
// vaccinations by order number or by vaccine and date, the current doses of its registry patient
// that a report may merge with) is part of the prefetch, so a miss means the row does not exist.

// The prefetch queries. Rows are locked in id order, as a batch's records would lock them one by
// one: FOR UPDATE of the sender patient and of the registry patient it is linked or linking to.
// The vaccinations are read without row locks: every writer of a vaccination (this writer, for the
// sender patient's own rows and for the merge of a dose's reports) holds the lock of its registry
// patient first, taken by the queries before (a batch that changed them has committed before this
// one's patients query returns, and the vaccinations query, a later statement, sees what it wrote).
// Locking each vaccination row as well would write every one of them (its lock) for nothing.
const (
	viewPatientColumns = `p.id, p.env, p.organization_id, p.id_value, p.id_authority, p.id_type, p.registry_patient_id,
		p.birth_date, p.match_family, p.match_given, p.sex, p.match_mother, p.match_street, p.postal_code,
		r.env, r.family_name, r.given_name, r.middle_name, r.birth_date, r.sex, r.mother_maiden, r.postal_code, r.sharing`
	viewVaccColumns = `v.id, v.patient_id, v.registry_patient_id, v.env, v.organization_id, v.site_id,
		COALESCE(v.filler_order_id, ''), v.kind, v.dose_key, v.cvx, v.ndc, v.administered_on, v.historical,
		v.info_source, v.amount, v.amount_units, v.lot, v.lot_expiration, v.mvx, v.route, v.body_site,
		v.completion_status, v.action_code, v.refusal_reason, v.deleted, COALESCE(v.merged_into, 0)`
	identityJoin = `unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[]) AS k(env, org, value, authority, typ)
		JOIN patients p ON p.env = k.env::char(1) AND p.organization_id = k.org AND p.id_value = k.value
			AND p.id_authority = k.authority AND p.id_type = k.typ`
	// The linking blocks of the records whose sender patient is not stored yet: only a newly seen
	// patient is linked (registry.link), so a block is read only for a record whose identifier
	// the patients table does not hold (a patient reported again would read its own row a second
	// time, and lock its registry patient twice, for nothing).
	blockJoin = `(SELECT DISTINCT b.env, b.birth, b.family, b.given
			FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[])
				AS b(env, birth, family, given, org, value, authority, typ)
			WHERE NOT EXISTS (SELECT 1 FROM patients q WHERE q.env = b.env::char(1) AND q.organization_id = b.org
				AND q.id_value = b.value AND q.id_authority = b.authority AND q.id_type = b.typ)) b
		JOIN patients p ON p.env = b.env::char(1) AND p.birth_date = b.birth AND p.match_family = b.family
			AND p.match_given = b.given`
	prefetchPatients = `SELECT ` + viewPatientColumns + ` FROM ` + identityJoin + `
		JOIN registry_patients r ON r.id = p.registry_patient_id
		ORDER BY p.id FOR UPDATE OF p, r`
	// Vaccinations by the order numbers the records name (another patient's, when a sender reused
	// one: only read, for the review).
	prefetchFillerVaccs = `SELECT ` + viewVaccColumns + `
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS k(env, org, filler)
		JOIN vaccinations v ON v.env = k.env::char(1) AND v.organization_id = k.org AND v.filler_order_id = k.filler
		ORDER BY v.id`
)

var (
	prefetchCandidates = `SELECT ` + viewPatientColumns + ` FROM ` + blockJoin + `
		JOIN registry_patients r ON r.id = p.registry_patient_id
		ORDER BY r.id, p.id FOR UPDATE OF r`
	// Every vaccination of the registry patients the batch's sender patients are (or may be linked
	// to): the sender's own, which a report may update, and the other reports of its doses, which
	// it may merge with. The registry patients are those the patient queries returned (read in a
	// second round trip, prefetchVaccs): finding them again here, by identifier and by linking
	// block in a subquery, cost PostgreSQL the index look-ups of both patient queries a second time,
	// and the planning of a five-way query, on every batch.
	prefetchRegistryVaccs = `SELECT ` + viewVaccColumns + ` FROM vaccinations v
		WHERE v.registry_patient_id = ANY($1::bigint[])
		ORDER BY v.id`
)

// prefetch reads recs' registry content into a view, in two round trips on tx: the first sends
// what is queued on tx already with the patient look-ups (by identifier and by linking block,
// with their row locks), the second the vaccinations of the registry patients those returned and
// those the records name by order number. Statements queued after it go out with the next round
// trip.
func prefetch(ctx context.Context, tx *pipeTx, recs []*ingest.Record) (*registry.View, error) {
	v := registry.NewViewFor(len(recs))
	var ids struct {
		env, value, authority, typ textArray
		org                        int8Array
	}
	var blocks struct { // a block per record's patient: its identifier decides whether it is read
		env, family, given       textArray
		birth                    dateArray
		org                      int8Array
		value, authority, idType textArray
	}
	var fillers struct {
		env, filler textArray
		org         int8Array
	}
	seenKey := map[registry.PatientKey]bool{}
	type blockOf struct {
		b registry.BlockKey
		k registry.PatientKey
	}
	seenBlock := map[blockOf]bool{}
	seenFiller := map[registry.FillerKey]bool{}
	for _, rec := range recs {
		k, ok := registry.KeyOf(rec)
		if !ok {
			continue
		}
		if !seenKey[k] {
			seenKey[k] = true
			ids.env, ids.org, ids.value = append(ids.env, k.Env), append(ids.org, k.Org), append(ids.value, k.Value)
			ids.authority, ids.typ = append(ids.authority, k.Authority), append(ids.typ, k.IDTyp)
		}
		d := v.Demographics(rec)
		if b, ok := registry.BlockOf(rec.Env, d); ok && !seenBlock[blockOf{b, k}] {
			seenBlock[blockOf{b, k}] = true
			blocks.env, blocks.birth = append(blocks.env, b.Env), append(blocks.birth, *d.Birth)
			blocks.family, blocks.given = append(blocks.family, b.Family), append(blocks.given, b.Given)
			blocks.org, blocks.value = append(blocks.org, k.Org), append(blocks.value, k.Value)
			blocks.authority, blocks.idType = append(blocks.authority, k.Authority), append(blocks.idType, k.IDTyp)
		}
		for i := range rec.VXU.Orders {
			f := registry.OrderNumber(&rec.VXU.Orders[i])
			fk := registry.FillerKey{Env: rec.Env, Org: k.Org, Filler: f}
			if f == "" || seenFiller[fk] {
				continue
			}
			seenFiller[fk] = true
			fillers.env, fillers.org, fillers.filler = append(fillers.env, fk.Env), append(fillers.org, fk.Org), append(fillers.filler, f)
		}
	}
	if len(ids.env) == 0 {
		return v, nil
	}
	// The registry patients the patient queries return, each once, in the order read.
	var regs int8Array
	seenReg := map[int64]bool{}
	addReg := func(id int64) {
		if !seenReg[id] {
			seenReg[id] = true
			regs = append(regs, id)
		}
	}
	readPatients := func(rows pgx.Rows) error { return readViewPatients(v, rows, addReg) }
	readVaccs := func(rows pgx.Rows) error { return readViewVaccs(v, rows) }
	if err := tx.QueueQuery(ctx, prefetchPatients, readPatients, ids.env, ids.org, ids.value, ids.authority, ids.typ); err != nil {
		return nil, fmt.Errorf("store: look up patients: %w", err)
	}
	if len(blocks.env) > 0 {
		if err := tx.QueueQuery(ctx, prefetchCandidates, readPatients, blocks.env, blocks.birth, blocks.family, blocks.given,
			blocks.org, blocks.value, blocks.authority, blocks.idType); err != nil {
			return nil, fmt.Errorf("store: look up link candidates: %w", err)
		}
	}
	if err := tx.Flush(ctx); err != nil {
		return nil, err
	}
	if len(regs) > 0 {
		if err := tx.QueueQuery(ctx, prefetchRegistryVaccs, readVaccs, regs); err != nil {
			return nil, fmt.Errorf("store: look up vaccinations: %w", err)
		}
	}
	if len(fillers.env) > 0 {
		if err := tx.QueueQuery(ctx, prefetchFillerVaccs, readVaccs, fillers.env, fillers.org, fillers.filler); err != nil {
			return nil, fmt.Errorf("store: look up vaccinations by order number: %w", err)
		}
	}
	return v, nil
}

// readViewPatients and readViewVaccs scan every row into the same variables (their scan targets
// built once per query, not per row: each would otherwise escape to the heap with every row) and
// hand the view a copy of each. Scan sets every field scanned, and pgx gives each string, date
// pointer and slice of a row memory of its own, so the copies share nothing.
func readViewPatients(v *registry.View, rows pgx.Rows, addReg func(int64)) error {
	var p registry.Patient
	var r registry.RegistryPatient
	dest := []any{&p.ID, &p.Key.Env, &p.Key.Org, &p.Key.Value, &p.Key.Authority, &p.Key.IDTyp, &p.RegID,
		&p.D.Birth, &p.D.MatchFamily, &p.D.MatchGiven, &p.D.Sex, &p.D.MatchMother, &p.D.MatchStreet, &p.D.Zip,
		&r.Env, &r.Family, &r.Given, &r.Middle, &r.Birth, &r.Sex, &r.Mother, &r.Zip, &r.Sharing}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: read patients: %w", err)
		}
		r.ID = p.RegID
		addReg(r.ID)
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
