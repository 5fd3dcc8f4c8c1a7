package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vaxgate/vaxgate/registry"
	"github.com/vaxgate/vaxgate/report"
)

// Set-based writes. A batch's records are applied in Go (registry.Registry.Apply over the batch's
// view); what they made of each row — its final state, whatever number of records changed it,
// with all their report references appended — is then written with one statement per table and
// kind of write, its rows passed as arrays (INSERT ... SELECT FROM unnest(...), UPDATE ... FROM
// unnest(...)): a few Bind/Execute per batch instead of one per row, each with its 20 to 26
// parameters. The statements are queued on the batch's pipeTx and go out with its COMMIT.

// archiveRow is one messages row of the batch.
type archiveRow struct {
	id                                  int64
	env                                 *string
	site, cred                          *int64
	transport, control, facility, mtype string
	received                            time.Time
	raw, ack                            []byte
	code                                string
	findings                            string // json
	resendKey                           bool
	digest, more                        []byte
	moreCount                           int32
	charset                             *string
	keys                                []string // the finding keys of its facts (facts.go)
	// content is what its raw message reports (facts.go intakeFacts); nil: no facts (no site).
	content *report.Content
}

// stagedBatch collects a batch's archive rows, in order.
type stagedBatch struct {
	messages []archiveRow
}

// messageRowColumns is the number of columns of an archive row as the writer sends it (copyMessages,
// and migration 013's batch_message): the archive's 18, then its facts' 20 (addFacts).
const messageRowColumns = 38

// messagesSize is about the size of rows encoded as COPY's tuples (copyMessages).
func messagesSize(rows []archiveRow) int {
	size := 0
	for i := range rows {
		r := &rows[i]
		size += 12 + 8*messageRowColumns + 160 + len(r.raw) + len(r.ack) + len(r.findings) + len(r.digest) + len(r.more) +
			len(r.control) + len(r.facility)
		for _, k := range r.keys {
			size += 4 + len(k)
		}
	}
	return size
}

// addMessages adds rows to a, as COPY's tuples (copyMessages) or batch_message rows.
func addMessages(a *rowArray, rows []archiveRow) {
	for i := range rows {
		r := &rows[i]
		a.begin(messageRowColumns)
		a.int8(r.id)
		a.textPtr(r.env)
		a.int8Ptr(r.site)
		a.int8Ptr(r.cred)
		a.text(r.transport)
		a.text(r.control)
		a.text(r.facility)
		a.text(r.mtype)
		a.timestamptz(r.received)
		a.bytea(r.raw)
		a.bytea(r.ack)
		a.text(r.code)
		a.jsonText(r.findings)
		a.bool(r.resendKey)
		a.bytea(r.digest)
		a.bytea(r.more)
		a.int4(r.moreCount)
		a.textPtr(r.charset)
		if r.content == nil {
			addFacts(a, nil)
		} else {
			// The facts row as the summaries would build it (report.NewFactsRow); of the archive
			// columns it reads only the finding keys.
			fr := report.NewFactsRow(&report.Archived{FindingKeys: r.keys}, r.content)
			addFacts(a, &fr)
		}
		a.end()
	}
}

const (
	insertRegistryPatients = `INSERT INTO registry_patients (id, env, family_name, given_name, middle_name, birth_date, sex,
		mother_maiden, postal_code, sharing)
	SELECT u.id, u.env, u.family, u.given, u.middle, u.birth, u.sex, u.mother, u.zip, u.sharing
	FROM unnest($1::batch_registry_patient[]) AS u`
	updateRegistryPatients = `UPDATE registry_patients r SET family_name = u.family, given_name = u.given,
		middle_name = u.middle, birth_date = u.birth, sex = u.sex, mother_maiden = u.mother, postal_code = u.zip,
		sharing = u.sharing, updated_at = now()
	FROM unnest($1::batch_registry_patient[]) AS u
	WHERE r.id = u.id`
	insertPatients = `INSERT INTO patients (id, env, organization_id, id_value, id_authority, id_type, registry_patient_id,
		family_name, given_name, middle_name, birth_date, sex, mother_maiden, postal_code, protection, report_messages,
		match_family, match_given, match_mother, match_street)
	SELECT u.id, u.env, u.org, u.value, u.authority, u.typ, u.reg, u.family, u.given, u.middle, u.birth, u.sex, u.mother,
		u.zip, u.protection, u.reports, u.mfamily, u.mgiven, u.mmother, u.mstreet
	FROM unnest($1::batch_patient[]) AS u`
	updatePatients = `UPDATE patients p SET family_name = u.family, given_name = u.given, middle_name = u.middle,
		birth_date = u.birth, sex = u.sex, mother_maiden = u.mother, postal_code = u.zip, protection = u.protection,
		report_messages = p.report_messages || u.reports, match_family = u.mfamily, match_given = u.mgiven,
		match_mother = u.mmother, match_street = u.mstreet, updated_at = now()
	FROM unnest($1::batch_patient[]) AS u
	WHERE p.id = u.id`
	insertVaccinations = `INSERT INTO vaccinations (id, env, patient_id, registry_patient_id, organization_id, site_id,
		filler_order_id, kind, cvx, ndc, administered_on, historical, info_source, amount, amount_units, lot,
		lot_expiration, mvx, route, body_site, completion_status, action_code, refusal_reason, dose_key, deleted,
		deleted_at, merged_into, report_messages, report_groups)
	SELECT u.id, u.env, u.patient, u.reg, u.org, u.site, NULLIF(u.filler, ''), u.kind, u.cvx, u.ndc, u.date, u.historical,
		u.info, u.amount, u.units, u.lot, u.lot_exp, u.mvx, u.route, u.body_site, u.completion, u.action, u.refusal,
		u.dose_key, u.deleted, CASE WHEN u.deleted THEN now() END, u.merged, u.reports, u.groups
	FROM unnest($1::batch_vaccination[]) AS u`
	updateVaccinations = `UPDATE vaccinations v SET site_id = u.site, filler_order_id = NULLIF(u.filler, ''),
		kind = u.kind, cvx = u.cvx, ndc = u.ndc, administered_on = u.date, historical = u.historical,
		info_source = u.info, amount = u.amount, amount_units = u.units, lot = u.lot, lot_expiration = u.lot_exp,
		mvx = u.mvx, route = u.route, body_site = u.body_site, completion_status = u.completion,
		action_code = u.action, refusal_reason = u.refusal, dose_key = u.dose_key, deleted = u.deleted,
		deleted_at = CASE WHEN u.deleted_now THEN now() WHEN u.deleted THEN v.deleted_at END,
		merged_into = u.merged, report_messages = v.report_messages || u.reports,
		report_groups = v.report_groups || u.groups, updated_at = now()
	FROM unnest($1::batch_vaccination[]) AS u
	WHERE v.id = u.id`
	insertSharingChanges = `INSERT INTO sharing_changes (id, registry_patient_id, old_status, new_status, source, reason,
		message_id)
	SELECT u.id, u.reg, NULLIF(u.old, ''), u.new, u.source, u.reason, u.message
	FROM unnest($1::batch_sharing_change[]) AS u`
)

// writeRegistry queues the writes of what the batch's records made of the registry (view).
func writeRegistry(ctx context.Context, tx *pipeTx, view *registry.View) error {
	regs, patients, vaccs, sharing, reviews := view.Written()
	if err := writeRegistryPatients(ctx, tx, regs); err != nil {
		return err
	}
	if err := writePatients(ctx, tx, patients); err != nil {
		return err
	}
	if err := writeVaccinations(ctx, tx, vaccs); err != nil {
		return err
	}
	if err := writeSharing(ctx, tx, sharing); err != nil {
		return err
	}
	for i := range reviews {
		if err := writeReview(ctx, tx, &reviews[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeRows queues the insert of a table's new rows (ins) and the update of its changed ones
// (upd), each a statement when it has rows; table names it in errors.
func writeRows(ctx context.Context, tx *pipeTx, insert string, ins *rowArray, update string, upd *rowArray, table string) error {
	if ins.n > 0 {
		if _, err := tx.Exec(ctx, insert, ins); err != nil {
			return fmt.Errorf("store: insert %s: %w", table, err)
		}
	}
	if upd.n > 0 {
		if _, err := tx.Exec(ctx, update, upd); err != nil {
			return fmt.Errorf("store: update %s: %w", table, err)
		}
	}
	return nil
}

// The batch row types' columns, in order (migration 013).
const (
	registryRowColumns    = 10
	patientRowColumns     = 20
	vaccinationRowColumns = 29
	sharingRowColumns     = 7
)

func writeRegistryPatients(ctx context.Context, tx *pipeTx, regs []*registry.RegistryPatient) error {
	var ins, upd rowArray
	for _, r := range regs {
		a := &upd
		if r.New {
			a = &ins
		}
		a.begin(registryRowColumns)
		a.int8(r.ID)
		a.text(r.Env)
		a.text(r.Family)
		a.text(r.Given)
		a.text(r.Middle)
		a.date(r.Birth)
		a.text(r.Sex)
		a.text(r.Mother)
		a.text(r.Zip)
		a.text(r.Sharing)
		a.end()
	}
	return writeRows(ctx, tx, insertRegistryPatients, &ins, updateRegistryPatients, &upd, "registry patients")
}

func writePatients(ctx context.Context, tx *pipeTx, patients []*registry.Patient) error {
	var ins, upd rowArray
	for _, p := range patients {
		a := &upd
		if p.New {
			a = &ins
		}
		d := &p.D
		a.begin(patientRowColumns)
		a.int8(p.ID)
		a.text(p.Key.Env)
		a.int8(p.Key.Org)
		a.text(p.Key.Value)
		a.text(p.Key.Authority)
		a.text(p.Key.IDTyp)
		a.int8(p.RegID)
		a.text(d.Name.Family)
		a.text(d.Name.Given)
		a.text(d.Name.Middle)
		a.date(d.Birth)
		a.text(d.Sex)
		a.text(d.Mother)
		a.text(d.Zip)
		a.text(p.Protection)
		a.int8s(p.Reports)
		a.text(d.MatchFamily)
		a.text(d.MatchGiven)
		a.text(d.MatchMother)
		a.text(d.MatchStreet)
		a.end()
	}
	return writeRows(ctx, tx, insertPatients, &ins, updatePatients, &upd, "patients")
}

// addVaccination adds x as a batch_vaccination row.
func addVaccination(a *rowArray, x *registry.Vaccination) {
	a.begin(vaccinationRowColumns)
	a.int8(x.ID)
	a.text(x.Env)
	a.int8(x.PatientID)
	a.int8(x.RegID)
	a.int8(x.Org)
	a.int8(x.SiteID)
	a.text(x.Filler)
	a.text(x.Kind)
	a.text(x.CVX)
	a.text(x.NDC)
	a.date(&x.Date)
	a.bool(x.Historical)
	a.text(x.InfoSource)
	a.text(x.Amount)
	a.text(x.Units)
	a.text(x.Lot)
	a.date(x.LotExpiration)
	a.text(x.MVX)
	a.text(x.Route)
	a.text(x.BodySite)
	a.text(x.Completion)
	a.text(x.Action)
	a.text(x.RefusalReason)
	a.text(x.DoseKey)
	a.bool(x.Deleted)
	a.bool(x.DeletedNow)
	a.int8OrNull(x.MergedInto)
	msgs := make([]int64, len(x.Reports))
	groups := make([]int16, len(x.Reports))
	for i, r := range x.Reports {
		msgs[i], groups[i] = r.Message, r.Group
	}
	a.int8s(msgs)
	a.int2s(groups)
	a.end()
}

func writeVaccinations(ctx context.Context, tx *pipeTx, vaccs []*registry.Vaccination) error {
	var ins, upd rowArray
	for _, x := range vaccs {
		if x.New {
			addVaccination(&ins, x)
		} else {
			addVaccination(&upd, x)
		}
	}
	return writeRows(ctx, tx, insertVaccinations, &ins, updateVaccinations, &upd, "vaccinations")
}

// writeSharing queues the sharing history of the batch and, for each change of an existing status,
// its entry in the admin audit log, where registry staff and the site's administrators list every
// data-sharing change.
func writeSharing(ctx context.Context, tx *pipeTx, changes []registry.SharingChange) error {
	if len(changes) == 0 {
		return nil
	}
	var rows rowArray
	for _, c := range changes {
		rows.begin(sharingRowColumns)
		rows.int8(c.ID)
		rows.int8(c.RegID)
		rows.text(c.Old)
		rows.text(c.New)
		rows.text(c.Source)
		rows.text(c.Reason)
		rows.int8(c.MessageID)
		rows.end()
	}
	if _, err := tx.Exec(ctx, insertSharingChanges, &rows); err != nil {
		return fmt.Errorf("store: record sharing status: %w", err)
	}
	for _, c := range changes {
		if c.Old == "" {
			continue
		}
		before, _ := json.Marshal(map[string]string{"sharing": c.Old})
		after, _ := json.Marshal(map[string]any{"sharing": c.New, "source": c.Source, "reason": c.Reason,
			"message_id": c.MessageID, "sharing_change_id": c.ID})
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (at, actor, action, target_type, target_id, site_ids, before, after)
			VALUES (now(), $1, 'patient.set_sharing', 'patient', $2, $3, $4, $5)`,
			"hl7 message from site "+c.SiteCode, fmt.Sprint(c.RegID), []int64{c.SiteID}, before, after); err != nil {
			return fmt.Errorf("store: audit sharing change: %w", err)
		}
	}
	return nil
}

func writeReview(ctx context.Context, tx *pipeTx, r *registry.Review) error {
	ev, err := json.Marshal(r.Evidence)
	if err != nil {
		return fmt.Errorf("store: encode review evidence: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO registry_reviews (env, kind, registry_patient_id, patient_id,
			candidates, vaccination_ids, evidence, message_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.Env, r.Kind, r.RegID, r.PatientID, r.Candidates, r.Vaccinations, ev, r.MessageID); err != nil {
		return fmt.Errorf("store: open %s review: %w", r.Kind, err)
	}
	return nil
}
