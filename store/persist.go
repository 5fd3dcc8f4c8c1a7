package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
	findings                            string // jsonb
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

// insertMessages inserts a batch's archive rows with their report facts (facts.go): the facts
// columns of a row whose f_has is false (no site: no facts) are NULL.
const insertMessages = `INSERT INTO messages (id, env, site_id, credential_id, transport, control_id, sending_facility,
		message_type, received_at, raw, ack, ack_code, findings, resend_key, content_digest, more_findings,
		more_findings_count, charset, readable, has_errors, has_warnings, finding_keys, administered, historical,
		refusals, immunity, with_lot, with_mvx, with_funding, with_vis, has_race, has_ethnicity, has_address, lag_1,
		lag_7, lag_30, lag_late, lag_days)
	SELECT id, env, site_id, credential_id, transport, control_id, sending_facility, message_type, received_at,
		raw, ack, ack_code, findings::jsonb, resend_key, content_digest, more_findings, more_findings_count, charset,
		CASE WHEN f_has THEN f_readable END, CASE WHEN f_has THEN f_errs END, CASE WHEN f_has THEN f_warns END,
		CASE WHEN f_has THEN f_keys::text[] END, CASE WHEN f_has THEN f_adm END, CASE WHEN f_has THEN f_hist END,
		CASE WHEN f_has THEN f_ref END, CASE WHEN f_has THEN f_imm END, CASE WHEN f_has THEN f_lot END,
		CASE WHEN f_has THEN f_mvx END, CASE WHEN f_has THEN f_fund END, CASE WHEN f_has THEN f_vis END,
		CASE WHEN f_has THEN f_race END, CASE WHEN f_has THEN f_eth END, CASE WHEN f_has THEN f_addr END,
		CASE WHEN f_has THEN f_lag1 END, CASE WHEN f_has THEN f_lag7 END, CASE WHEN f_has THEN f_lag30 END,
		CASE WHEN f_has THEN f_late END, CASE WHEN f_has THEN f_lagdays END
	FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::timestamptz[], $10::bytea[], $11::bytea[], $12::text[], $13::text[], $14::bool[], $15::bytea[], $16::bytea[],
		$17::int4[], $18::text[], $19::bool[], $20::bool[], $21::bool[], $22::bool[], $23::text[], $24::int4[],
		$25::int4[], $26::int4[], $27::int4[], $28::int4[], $29::int4[], $30::int4[], $31::int4[], $32::bool[],
		$33::bool[], $34::bool[], $35::int4[], $36::int4[], $37::int4[], $38::int4[], $39::int4[])
		AS u(id, env, site_id, credential_id, transport, control_id, sending_facility, message_type, received_at,
		raw, ack, ack_code, findings, resend_key, content_digest, more_findings, more_findings_count, charset,
		f_has, f_readable, f_errs, f_warns, f_keys, f_adm, f_hist, f_ref, f_imm, f_lot, f_mvx, f_fund, f_vis, f_race,
		f_eth, f_addr, f_lag1, f_lag7, f_lag30, f_late, f_lagdays)`

// writeMessages queues the insert of the batch's archive rows, with their facts.
func writeMessages(ctx context.Context, tx *pipeTx, rows []archiveRow) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, insertMessages, messagesArgs(rows)...); err != nil {
		return fmt.Errorf("store: archive messages: %w", err)
	}
	return nil
}

// messagesArgs are insertMessages' arguments for rows.
func messagesArgs(rows []archiveRow) []any {
	n := len(rows)
	var (
		ids       = make(int8Array, n)
		envs      = make(nullTextArray, n)
		sites     = make(nullInt8Array, n)
		creds     = make(nullInt8Array, n)
		transport = make(textArray, n)
		control   = make(textArray, n)
		facility  = make(textArray, n)
		mtype     = make(textArray, n)
		received  = make(timestamptzArray, n)
		raw       = make(byteaArray, n)
		acks      = make(byteaArray, n)
		codes     = make(textArray, n)
		findings  = make(textArray, n)
		resend    = make(boolArray, n)
		digests   = make(byteaArray, n)
		more      = make(byteaArray, n)
		moreCount = make(int4Array, n)
		charsets  = make(nullTextArray, n)
		facts     = newFactsArrays(n)
	)
	for i := range rows {
		r := &rows[i]
		ids[i], envs[i], sites[i], creds[i] = r.id, r.env, r.site, r.cred
		transport[i], control[i], facility[i], mtype[i] = r.transport, r.control, r.facility, r.mtype
		received[i], raw[i], acks[i], codes[i], findings[i] = r.received, r.raw, r.ack, r.code, r.findings
		resend[i], digests[i], more[i], moreCount[i], charsets[i] = r.resendKey, r.digest, r.more, r.moreCount, r.charset
		if r.content == nil {
			facts.addNone()
			continue
		}
		// The facts row as the summaries would build it (report.NewFactsRow); of the archive
		// columns it reads only the finding keys.
		fr := report.NewFactsRow(&report.Archived{FindingKeys: r.keys}, r.content)
		facts.add(&fr)
	}
	args := append(make([]any, 0, 39), ids, envs, sites, creds, transport, control, facility, mtype, received,
		raw, acks, codes, findings, resend, digests, more, moreCount, charsets)
	return append(args, facts.args()...)
}

const (
	insertRegistryPatients = `INSERT INTO registry_patients (id, env, family_name, given_name, middle_name, birth_date, sex,
		mother_maiden, postal_code, sharing)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::text[], $8::text[],
		$9::text[], $10::text[])`
	updateRegistryPatients = `UPDATE registry_patients r SET family_name = u.family, given_name = u.given,
		middle_name = u.middle, birth_date = u.birth, sex = u.sex, mother_maiden = u.mother, postal_code = u.zip,
		sharing = u.sharing, updated_at = now()
	FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::text[], $8::text[],
		$9::text[]) AS u(id, family, given, middle, birth, sex, mother, zip, sharing)
	WHERE r.id = u.id`
	insertPatients = `INSERT INTO patients (id, env, organization_id, id_value, id_authority, id_type, registry_patient_id,
		family_name, given_name, middle_name, birth_date, sex, mother_maiden, postal_code, protection, report_messages,
		match_family, match_given, match_mother, match_street)
	SELECT id, env, org, value, authority, typ, reg, family, given, middle, birth, sex, mother, zip, protection,
		reports::bigint[], mfamily, mgiven, mmother, mstreet
	FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
		$9::text[], $10::text[], $11::date[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
		$17::text[], $18::text[], $19::text[], $20::text[])
		AS u(id, env, org, value, authority, typ, reg, family, given, middle, birth, sex, mother, zip, protection,
		reports, mfamily, mgiven, mmother, mstreet)`
	updatePatients = `UPDATE patients p SET family_name = u.family, given_name = u.given, middle_name = u.middle,
		birth_date = u.birth, sex = u.sex, mother_maiden = u.mother, postal_code = u.zip, protection = u.protection,
		report_messages = p.report_messages || u.reports::bigint[], match_family = u.mfamily, match_given = u.mgiven,
		match_mother = u.mmother, match_street = u.mstreet, updated_at = now()
	FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::text[], $8::text[],
		$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
		AS u(id, family, given, middle, birth, sex, mother, zip, protection, reports, mfamily, mgiven, mmother, mstreet)
	WHERE p.id = u.id`
	vaccinationArrays = `unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::date[], $12::bool[], $13::text[], $14::text[], $15::text[],
		$16::text[], $17::date[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[],
		$24::text[], $25::bool[], $26::bool[], $27::bigint[], $28::text[], $29::text[])
		AS u(id, env, patient, reg, org, site, filler, kind, cvx, ndc, date, historical, info, amount, units, lot,
		lot_exp, mvx, route, body_site, completion, action, refusal, dose_key, deleted, deleted_now, merged,
		reports, groups)`
	insertVaccinations = `INSERT INTO vaccinations (id, env, patient_id, registry_patient_id, organization_id, site_id,
		filler_order_id, kind, cvx, ndc, administered_on, historical, info_source, amount, amount_units, lot,
		lot_expiration, mvx, route, body_site, completion_status, action_code, refusal_reason, dose_key, deleted,
		deleted_at, merged_into, report_messages, report_groups)
	SELECT id, env, patient, reg, org, site, NULLIF(filler, ''), kind, cvx, ndc, date, historical, info, amount, units,
		lot, lot_exp, mvx, route, body_site, completion, action, refusal, dose_key, deleted,
		CASE WHEN deleted THEN now() END, NULLIF(merged, 0), reports::bigint[], groups::int2[]
	FROM ` + vaccinationArrays
	updateVaccinations = `UPDATE vaccinations v SET site_id = u.site, filler_order_id = NULLIF(u.filler, ''),
		kind = u.kind, cvx = u.cvx, ndc = u.ndc, administered_on = u.date, historical = u.historical,
		info_source = u.info, amount = u.amount, amount_units = u.units, lot = u.lot, lot_expiration = u.lot_exp,
		mvx = u.mvx, route = u.route, body_site = u.body_site, completion_status = u.completion,
		action_code = u.action, refusal_reason = u.refusal, dose_key = u.dose_key, deleted = u.deleted,
		deleted_at = CASE WHEN u.deleted_now THEN now() WHEN u.deleted THEN v.deleted_at END,
		merged_into = NULLIF(u.merged, 0), report_messages = v.report_messages || u.reports::bigint[],
		report_groups = v.report_groups || u.groups::int2[], updated_at = now()
	FROM ` + vaccinationArrays + `
	WHERE v.id = u.id`
	insertSharingChanges = `INSERT INTO sharing_changes (id, registry_patient_id, old_status, new_status, source, reason,
		message_id)
	SELECT id, reg, NULLIF(old, ''), new, source, reason, message
	FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
		AS u(id, reg, old, new, source, reason, message)`
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

func writeRegistryPatients(ctx context.Context, tx *pipeTx, regs []*registry.RegistryPatient) error {
	var ins, upd struct {
		id                         int8Array
		env, family, given, middle textArray
		birth                      nullDateArray
		sex, mother, zip, sharing  textArray
	}
	for _, r := range regs {
		a := &upd
		if r.New {
			a = &ins
			a.env = append(a.env, r.Env)
		}
		a.id, a.family, a.given, a.middle = append(a.id, r.ID), append(a.family, r.Family), append(a.given, r.Given), append(a.middle, r.Middle)
		a.birth, a.sex, a.mother = append(a.birth, r.Birth), append(a.sex, r.Sex), append(a.mother, r.Mother)
		a.zip, a.sharing = append(a.zip, r.Zip), append(a.sharing, r.Sharing)
	}
	if len(ins.id) > 0 {
		if _, err := tx.Exec(ctx, insertRegistryPatients, ins.id, ins.env, ins.family, ins.given, ins.middle, ins.birth,
			ins.sex, ins.mother, ins.zip, ins.sharing); err != nil {
			return fmt.Errorf("store: insert registry patients: %w", err)
		}
	}
	if len(upd.id) > 0 {
		if _, err := tx.Exec(ctx, updateRegistryPatients, upd.id, upd.family, upd.given, upd.middle, upd.birth,
			upd.sex, upd.mother, upd.zip, upd.sharing); err != nil {
			return fmt.Errorf("store: update registry patients: %w", err)
		}
	}
	return nil
}

func writePatients(ctx context.Context, tx *pipeTx, patients []*registry.Patient) error {
	var ins, upd struct {
		id, org, reg                          int8Array
		env, value, authority, typ            textArray
		family, given, middle                 textArray
		birth                                 nullDateArray
		sex, mother, zip, protection, reports textArray
		mfamily, mgiven, mmother, mstreet     textArray
	}
	for _, p := range patients {
		a := &upd
		if p.New {
			a = &ins
			a.env, a.org, a.value = append(a.env, p.Key.Env), append(a.org, p.Key.Org), append(a.value, p.Key.Value)
			a.authority, a.typ, a.reg = append(a.authority, p.Key.Authority), append(a.typ, p.Key.IDTyp), append(a.reg, p.RegID)
		}
		d := &p.D
		a.id, a.family, a.given, a.middle = append(a.id, p.ID), append(a.family, d.Name.Family), append(a.given, d.Name.Given), append(a.middle, d.Name.Middle)
		a.birth, a.sex, a.mother, a.zip = append(a.birth, d.Birth), append(a.sex, d.Sex), append(a.mother, d.Mother), append(a.zip, d.Zip)
		a.protection, a.reports = append(a.protection, p.Protection), append(a.reports, int64Array(p.Reports))
		a.mfamily, a.mgiven = append(a.mfamily, d.MatchFamily), append(a.mgiven, d.MatchGiven)
		a.mmother, a.mstreet = append(a.mmother, d.MatchMother), append(a.mstreet, d.MatchStreet)
	}
	if len(ins.id) > 0 {
		if _, err := tx.Exec(ctx, insertPatients, ins.id, ins.env, ins.org, ins.value, ins.authority, ins.typ, ins.reg,
			ins.family, ins.given, ins.middle, ins.birth, ins.sex, ins.mother, ins.zip, ins.protection, ins.reports,
			ins.mfamily, ins.mgiven, ins.mmother, ins.mstreet); err != nil {
			return fmt.Errorf("store: insert patients: %w", err)
		}
	}
	if len(upd.id) > 0 {
		if _, err := tx.Exec(ctx, updatePatients, upd.id, upd.family, upd.given, upd.middle, upd.birth, upd.sex,
			upd.mother, upd.zip, upd.protection, upd.reports, upd.mfamily, upd.mgiven, upd.mmother, upd.mstreet); err != nil {
			return fmt.Errorf("store: update patients: %w", err)
		}
	}
	return nil
}

// vaccArrays are the columns of vaccinationArrays.
type vaccArrays struct {
	id, patient, reg, org, site, merged                        int8Array
	env, filler, kind, cvx, ndc                                textArray
	date                                                       dateArray
	historical, deleted, deletedNow                            boolArray
	info, amount, units, lot                                   textArray
	lotExp                                                     nullDateArray
	mvx, route, bodySite, completion, action, refusal, doseKey textArray
	reports, groups                                            textArray
}

func (a *vaccArrays) add(x *registry.Vaccination) {
	a.id, a.env, a.patient, a.reg = append(a.id, x.ID), append(a.env, x.Env), append(a.patient, x.PatientID), append(a.reg, x.RegID)
	a.org, a.site, a.filler, a.kind = append(a.org, x.Org), append(a.site, x.SiteID), append(a.filler, x.Filler), append(a.kind, x.Kind)
	a.cvx, a.ndc, a.date, a.historical = append(a.cvx, x.CVX), append(a.ndc, x.NDC), append(a.date, x.Date), append(a.historical, x.Historical)
	a.info, a.amount, a.units, a.lot = append(a.info, x.InfoSource), append(a.amount, x.Amount), append(a.units, x.Units), append(a.lot, x.Lot)
	a.lotExp, a.mvx, a.route, a.bodySite = append(a.lotExp, x.LotExpiration), append(a.mvx, x.MVX), append(a.route, x.Route), append(a.bodySite, x.BodySite)
	a.completion, a.action, a.refusal = append(a.completion, x.Completion), append(a.action, x.Action), append(a.refusal, x.RefusalReason)
	a.doseKey, a.deleted, a.deletedNow, a.merged = append(a.doseKey, x.DoseKey), append(a.deleted, x.Deleted), append(a.deletedNow, x.DeletedNow), append(a.merged, x.MergedInto)
	msgs := make([]int64, len(x.Reports))
	groups := make([]int64, len(x.Reports))
	for i, r := range x.Reports {
		msgs[i], groups[i] = r.Message, int64(r.Group)
	}
	a.reports, a.groups = append(a.reports, int64Array(msgs)), append(a.groups, int64Array(groups))
}

func (a *vaccArrays) args() []any {
	return []any{a.id, a.env, a.patient, a.reg, a.org, a.site, a.filler, a.kind, a.cvx, a.ndc, a.date, a.historical,
		a.info, a.amount, a.units, a.lot, a.lotExp, a.mvx, a.route, a.bodySite, a.completion, a.action, a.refusal,
		a.doseKey, a.deleted, a.deletedNow, a.merged, a.reports, a.groups}
}

func writeVaccinations(ctx context.Context, tx *pipeTx, vaccs []*registry.Vaccination) error {
	var ins, upd vaccArrays
	for _, x := range vaccs {
		if x.New {
			ins.add(x)
		} else {
			upd.add(x)
		}
	}
	if len(ins.id) > 0 {
		if _, err := tx.Exec(ctx, insertVaccinations, ins.args()...); err != nil {
			return fmt.Errorf("store: insert vaccinations: %w", err)
		}
	}
	if len(upd.id) > 0 {
		if _, err := tx.Exec(ctx, updateVaccinations, upd.args()...); err != nil {
			return fmt.Errorf("store: update vaccinations: %w", err)
		}
	}
	return nil
}

// writeSharing queues the sharing history of the batch and, for each change of an existing status,
// its entry in the admin audit log, where registry staff and the site's administrators list every
// data-sharing change.
func writeSharing(ctx context.Context, tx *pipeTx, changes []registry.SharingChange) error {
	if len(changes) == 0 {
		return nil
	}
	n := len(changes)
	ids, regs, msgs := make(int8Array, n), make(int8Array, n), make(int8Array, n)
	olds, news, sources, reasons := make(textArray, n), make(textArray, n), make(textArray, n), make(textArray, n)
	for i, c := range changes {
		ids[i], regs[i], msgs[i] = c.ID, c.RegID, c.MessageID
		olds[i], news[i], sources[i], reasons[i] = c.Old, c.New, c.Source, c.Reason
	}
	if _, err := tx.Exec(ctx, insertSharingChanges, ids, regs, olds, news, sources, reasons, msgs); err != nil {
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

// int64Array is the PostgreSQL array literal of xs ("{1,2,3}"): an array per row travels as one
// text element of an array parameter, cast back in SQL (unnest cannot pass arrays of arrays of
// different lengths).
func int64Array(xs []int64) string {
	b := make([]byte, 0, 2+len(xs)*8)
	b = append(b, '{')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return string(append(b, '}'))
}
