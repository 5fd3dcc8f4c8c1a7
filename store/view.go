package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
)

// batchView is what the records of one batch read of the registry: the sender patients they name,
// the patients of the linking blocks they fall in, the data-sharing status of those patients'
// registry patients, and the vaccinations their orders may be about. It is fetched for the whole
// batch with a few queries sent together, in one round trip, before any record is applied
// (prefetch), with the rows locked as the per-record look-ups locked them; then, as each record is
// applied, the view takes in what the record wrote, so that the next record reads its batch-mates'
// writes exactly as it would have read them from the database. Applying a batch thus costs no round
// trip per record, only the statements that write.
//
// The view is complete for what the batch asks: every look-up a record makes (its patient by
// identifier, the candidates of its linking block, its vaccinations by order number or by
// vaccine and date) was part of the prefetch, so a miss means the row does not exist.
type batchView struct {
	patients map[patientKey]*viewPatient
	blocks   map[blockKey]map[int64]*viewPatient // patients by linking block and given name
	sharing  map[int64]string                    // registry patient → data-sharing status
	fillers  map[fillerKey]*viewVacc
	vaccs    map[int64][]*viewVacc // by sender patient
	seen     map[int64]bool        // vaccination ids already in the view
	demo     map[*ingest.Record]*demographics
}

type patientKey struct {
	env                     string
	org                     int64
	value, authority, idTyp string
}

// blockKey is a linking block (environment, birth date, normalised family name) narrowed by the
// normalised given name: the candidates link compares.
type blockKey struct {
	env           string
	birth         string // YYYY-MM-DD
	family, given string
}

type fillerKey struct {
	env    string
	org    int64
	filler string
}

// viewPatient is a sender patient as linking and identity see it.
type viewPatient struct {
	id, regID int64
	key       patientKey
	block     blockKey
	hasBlock  bool
	c         demographics // sex, matchMother, matchStreet, zip: compareDemographics' inputs
}

// viewVacc is a vaccination as storeOrder's identity rules see it.
type viewVacc struct {
	id, patientID int64
	env           string
	org           int64
	filler        string // "" when it has none
	kind, doseKey string
	code          string // CVX, else "ndc:" + NDC (vaccineCode)
	date          time.Time
	deleted       bool
	historical    bool
}

func newBatchView() *batchView {
	return &batchView{
		patients: map[patientKey]*viewPatient{},
		blocks:   map[blockKey]map[int64]*viewPatient{},
		sharing:  map[int64]string{},
		fillers:  map[fillerKey]*viewVacc{},
		vaccs:    map[int64][]*viewVacc{},
		seen:     map[int64]bool{},
		demo:     map[*ingest.Record]*demographics{},
	}
}

func keyOf(rec *ingest.Record) (patientKey, bool) {
	if rec.VXU == nil || rec.Sender == nil || !rec.ResendKey {
		return patientKey{}, false
	}
	id := rec.VXU.Patient.PrimaryID()
	if id.Value == "" {
		return patientKey{}, false
	}
	return patientKey{env: rec.Env, org: rec.Sender.OrganizationID, value: id.Value, authority: id.Authority, idTyp: id.Type}, true
}

func blockOf(env string, d *demographics) (blockKey, bool) {
	if d.birth == nil || d.matchFamily == "" || d.matchGiven == "" {
		return blockKey{}, false
	}
	return blockKey{env: env, birth: d.birth.Format(time.DateOnly), family: d.matchFamily, given: d.matchGiven}, true
}

// The prefetch queries. Rows are locked in id order, as a batch's records would lock them one by
// one (FOR UPDATE of the sender patient, of the registry patient it is linked or linking to, of
// the vaccinations it may update).
const (
	viewPatientColumns = `p.id, p.env, p.organization_id, p.id_value, p.id_authority, p.id_type, p.registry_patient_id,
		p.birth_date, p.match_family, p.match_given, p.sex, p.match_mother, p.match_street, p.postal_code, r.sharing`
	viewVaccColumns = `v.id, v.patient_id, v.env, v.organization_id, COALESCE(v.filler_order_id, ''), v.kind, v.dose_key,
		v.administered_on, CASE WHEN v.cvx <> '' THEN v.cvx ELSE 'ndc:' || v.ndc END, v.deleted, v.historical`
	identityJoin = `unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[]) AS k(env, org, value, authority, typ)
		JOIN patients p ON p.env = k.env::char(1) AND p.organization_id = k.org AND p.id_value = k.value
			AND p.id_authority = k.authority AND p.id_type = k.typ`
	prefetchPatients = `SELECT ` + viewPatientColumns + ` FROM ` + identityJoin + `
		JOIN registry_patients r ON r.id = p.registry_patient_id
		ORDER BY p.id FOR UPDATE OF p, r`
	prefetchCandidates = `SELECT ` + viewPatientColumns + `
		FROM unnest($1::text[], $2::date[], $3::text[], $4::text[]) AS k(env, birth, family, given)
		JOIN patients p ON p.env = k.env::char(1) AND p.birth_date = k.birth AND p.match_family = k.family
			AND p.match_given = k.given
		JOIN registry_patients r ON r.id = p.registry_patient_id
		ORDER BY r.id, p.id FOR UPDATE OF r`
	prefetchPatientVaccs = `SELECT ` + viewVaccColumns + ` FROM ` + identityJoin + `
		JOIN vaccinations v ON v.patient_id = p.id
		ORDER BY v.id FOR UPDATE OF v`
	prefetchFillerVaccs = `SELECT ` + viewVaccColumns + `
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS k(env, org, filler)
		JOIN vaccinations v ON v.env = k.env::char(1) AND v.organization_id = k.org AND v.filler_order_id = k.filler
		ORDER BY v.id FOR UPDATE OF v`
)

// prefetch queues the look-ups of recs' registry content into tx; the view is filled when the
// queue is sent (the caller flushes it).
func (r *registry) prefetch(ctx context.Context, tx *pipeTx, recs []*ingest.Record) (*batchView, error) {
	v := newBatchView()
	var ids struct {
		env, value, authority, typ []string
		org                        []int64
	}
	var blocks struct {
		env, family, given []string
		birth              []time.Time
	}
	var fillers struct {
		env, filler []string
		org         []int64
	}
	seenKey := map[patientKey]bool{}
	seenBlock := map[blockKey]bool{}
	seenFiller := map[fillerKey]bool{}
	for _, rec := range recs {
		k, ok := keyOf(rec)
		if !ok {
			continue
		}
		if !seenKey[k] {
			seenKey[k] = true
			ids.env, ids.org, ids.value = append(ids.env, k.env), append(ids.org, k.org), append(ids.value, k.value)
			ids.authority, ids.typ = append(ids.authority, k.authority), append(ids.typ, k.idTyp)
		}
		d := demographicsOf(&rec.VXU.Patient)
		v.demo[rec] = &d
		if b, ok := blockOf(rec.Env, &d); ok && !seenBlock[b] {
			seenBlock[b] = true
			blocks.env, blocks.birth = append(blocks.env, b.env), append(blocks.birth, *d.birth)
			blocks.family, blocks.given = append(blocks.family, b.family), append(blocks.given, b.given)
		}
		for i := range rec.VXU.Orders {
			f := orderNumber(&rec.VXU.Orders[i])
			fk := fillerKey{env: rec.Env, org: k.org, filler: f}
			if f == "" || seenFiller[fk] {
				continue
			}
			seenFiller[fk] = true
			fillers.env, fillers.org, fillers.filler = append(fillers.env, fk.env), append(fillers.org, fk.org), append(fillers.filler, f)
		}
	}
	if len(ids.env) == 0 {
		return v, nil
	}
	idArgs := []any{ids.env, ids.org, ids.value, ids.authority, ids.typ}
	if err := tx.QueueQuery(ctx, prefetchPatients, v.readPatients, idArgs...); err != nil {
		return nil, fmt.Errorf("store: look up patients: %w", err)
	}
	if len(blocks.env) > 0 {
		if err := tx.QueueQuery(ctx, prefetchCandidates, v.readPatients,
			blocks.env, blocks.birth, blocks.family, blocks.given); err != nil {
			return nil, fmt.Errorf("store: look up link candidates: %w", err)
		}
	}
	if err := tx.QueueQuery(ctx, prefetchPatientVaccs, v.readVaccs, idArgs...); err != nil {
		return nil, fmt.Errorf("store: look up vaccinations: %w", err)
	}
	if len(fillers.env) > 0 {
		if err := tx.QueueQuery(ctx, prefetchFillerVaccs, v.readVaccs, fillers.env, fillers.org, fillers.filler); err != nil {
			return nil, fmt.Errorf("store: look up vaccinations by order number: %w", err)
		}
	}
	return v, nil
}

func (v *batchView) readPatients(rows pgx.Rows) error {
	for rows.Next() {
		var p viewPatient
		var birth *time.Time
		var family, given, sharing string
		if err := rows.Scan(&p.id, &p.key.env, &p.key.org, &p.key.value, &p.key.authority, &p.key.idTyp, &p.regID,
			&birth, &family, &given, &p.c.sex, &p.c.matchMother, &p.c.matchStreet, &p.c.zip, &sharing); err != nil {
			return fmt.Errorf("store: read patients: %w", err)
		}
		v.sharing[p.regID] = sharing
		if _, ok := v.patients[p.key]; ok {
			continue // in both look-ups
		}
		p.c.birth, p.c.matchFamily, p.c.matchGiven = birth, family, given
		v.putPatient(&p)
	}
	return rows.Err()
}

func (v *batchView) readVaccs(rows pgx.Rows) error {
	for rows.Next() {
		var x viewVacc
		if err := rows.Scan(&x.id, &x.patientID, &x.env, &x.org, &x.filler, &x.kind, &x.doseKey, &x.date, &x.code,
			&x.deleted, &x.historical); err != nil {
			return fmt.Errorf("store: read vaccinations: %w", err)
		}
		if v.seen[x.id] {
			continue // in both look-ups
		}
		v.addVacc(&x)
	}
	return rows.Err()
}

// --- patients ---

// demographics are rec's identifying fields, normalised once for the batch.
func (v *batchView) demographics(rec *ingest.Record) *demographics {
	if d, ok := v.demo[rec]; ok {
		return d
	}
	d := demographicsOf(&rec.VXU.Patient)
	return &d
}

// patient returns the sender patient with this identifier, nil when there is none.
func (v *batchView) patient(k patientKey) *viewPatient { return v.patients[k] }

// putPatient adds p (a new patient, or one read) or files it again under its current block.
func (v *batchView) putPatient(p *viewPatient) {
	if p.hasBlock {
		delete(v.blocks[p.block], p.id)
	}
	p.block, p.hasBlock = blockOf(p.key.env, &p.c)
	v.patients[p.key] = p
	if p.hasBlock {
		m := v.blocks[p.block]
		if m == nil {
			m = map[int64]*viewPatient{}
			v.blocks[p.block] = m
		}
		m[p.id] = p
	}
}

// setDemographics records what an update wrote of a patient's identifying fields.
func (v *batchView) setDemographics(p *viewPatient, d *demographics) {
	p.c = *d
	v.putPatient(p)
}

// candidates are the patients of d's block with d's given name, by registry patient and id: what
// link's query returned.
func (v *batchView) candidates(env string, d *demographics) []*viewPatient {
	b, ok := blockOf(env, d)
	if !ok {
		return nil
	}
	out := make([]*viewPatient, 0, len(v.blocks[b]))
	for _, p := range v.blocks[b] {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *viewPatient) int {
		return cmp.Or(cmp.Compare(a.regID, b.regID), cmp.Compare(a.id, b.id))
	})
	return out
}

// --- vaccinations ---

func (v *batchView) addVacc(x *viewVacc) {
	v.seen[x.id] = true
	v.vaccs[x.patientID] = append(v.vaccs[x.patientID], x)
	if x.filler != "" {
		v.fillers[fillerKey{env: x.env, org: x.org, filler: x.filler}] = x
	}
}

// byOrderNumber is the vaccination the sender numbered filler, nil when there is none.
func (v *batchView) byOrderNumber(env string, org int64, filler string) *viewVacc {
	return v.fillers[fillerKey{env: env, org: org, filler: filler}]
}

// byEvent is the sender's earlier report of the event (patient, kind, date, vaccine) that is not
// deleted and, when the report has an order number, has none itself; of the same source
// (administered or historical) unless sameSource is false, then preferring it; the earliest.
func (v *batchView) byEvent(patientID int64, kind string, date time.Time, code string, hasFiller, historical, sameSource bool) *viewVacc {
	var best *viewVacc
	for _, x := range v.vaccs[patientID] {
		if x.kind != kind || !x.date.Equal(date) || x.code != code || x.deleted || (hasFiller && x.filler != "") {
			continue
		}
		if sameSource && x.historical != historical {
			continue
		}
		switch {
		case best == nil:
			best = x
		case (x.historical == historical) != (best.historical == historical):
			if x.historical == historical {
				best = x
			}
		case x.id < best.id:
			best = x
		}
	}
	return best
}

// setFiller records an order number a vaccination took (it keeps its first).
func (v *batchView) setFiller(x *viewVacc, filler string) {
	if x.filler != "" || filler == "" {
		return
	}
	x.filler = filler
	v.fillers[fillerKey{env: x.env, org: x.org, filler: filler}] = x
}
