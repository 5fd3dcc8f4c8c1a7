package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/unicode/norm"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// registry applies the registry semantics of SPEC §2.6 to accepted messages, inside the writer's
// transaction: who the patient is (per sender, then across senders), which vaccination a report
// is about, and the data-sharing status.
type registry struct {
	// codes maps vaccines to vaccine groups, so that reports of the same dose under a specific and
	// an unspecified CVX (08 and 45, both HepB) are recognised as one dose.
	codes *codes.Set
}

// demographics are the identifying fields of a reported patient, as stored in patients and
// registry_patients, with their normalised forms for linking.
type demographics struct {
	name   ingest.Name
	birth  *time.Time
	sex    string
	mother string // mother's maiden family name
	zip    string

	matchFamily, matchGiven, matchMother, matchStreet string
}

func demographicsOf(pt *ingest.Patient) demographics {
	name := pt.LegalName()
	addr := primaryAddress(pt.Addresses)
	return demographics{
		name:        name,
		birth:       parseDate(pt.BirthDate),
		sex:         pt.Sex,
		mother:      pt.MotherMaiden.Family,
		zip:         addr.Zip,
		matchFamily: matchName(name.Family),
		matchGiven:  matchName(name.Given),
		matchMother: matchName(pt.MotherMaiden.Family),
		matchStreet: matchStreet(addr.Street),
	}
}

// primaryAddress is where the patient lives: the first legal (L) or home (H) address, else the
// first one.
func primaryAddress(as []ingest.Address) ingest.Address {
	for _, a := range as {
		if a.Type == "L" || a.Type == "H" {
			return a
		}
	}
	if len(as) > 0 {
		return as[0]
	}
	return ingest.Address{}
}

// matchName normalises a name for deterministic comparison: letters only, lower case, without
// diacritics, so that "Müller", "MULLER" and "Mul-ler" compare equal (EHRs without UTF-8 drop the
// umlaut; others add spaces, hyphens and apostrophes inconsistently).
func matchName(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'ß':
			b.WriteString("ss")
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// streetWords unifies the usual street-type abbreviations.
var streetWords = map[string]string{
	"street": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "lane": "ln",
	"boulevard": "blvd", "court": "ct", "place": "pl", "terrace": "ter", "circle": "cir",
	"highway": "hwy", "parkway": "pkwy", "square": "sq", "apartment": "apt", "suite": "ste",
	"north": "n", "south": "s", "east": "e", "west": "w",
}

// matchStreet normalises a street line: words of letters and digits, lower case, without
// diacritics, abbreviations unified ("12 Elm Street" = "12 ELM ST.").
func matchStreet(s string) string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() == 0 {
			return
		}
		word := w.String()
		if a, ok := streetWords[word]; ok {
			word = a
		}
		words = append(words, word)
		w.Reset()
	}
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			w.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return strings.Join(words, " ")
}

func zip5(z string) string {
	var b strings.Builder
	for _, r := range z {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
			if b.Len() == 5 {
				break
			}
		}
	}
	return b.String()
}

// definiteSex is M or F; anything else (U, O, empty) says nothing for linking.
func definiteSex(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "M" || s == "F" {
		return s
	}
	return ""
}

// linkLockClass is the first key of the transaction-scoped advisory locks that serialise linking:
// a constant of its own, so that they never collide with other advisory locks (tern's migration
// lock uses the one-key form).
const linkLockClass = 0x76617867 // "vaxg"

// linkKey is the advisory lock key of the linking block a record's patient falls in (environment,
// birth date, normalised family name): every registry patient it could be linked to is in that
// block, so two writers holding the lock cannot both create the same person. ok is false when the
// patient cannot be linked at all (no birth date or family name).
func linkKey(rec *ingest.Record) (key int32, ok bool) {
	if rec.VXU == nil || rec.Sender == nil {
		return 0, false
	}
	pt := &rec.VXU.Patient
	birth := parseDate(pt.BirthDate)
	family := matchName(pt.LegalName().Family)
	if birth == nil || family == "" {
		return 0, false
	}
	h := fnv.New32a()
	h.Write([]byte(rec.Env + "|" + birth.Format("20060102") + "|" + family))
	return int32(h.Sum32()), true
}

// resendLockClass is the first key of the advisory locks that serialise messages with the same
// site, environment and control ID (precheck).
const resendLockClass = 0x76617868 // "vaxh"

// resendLockKey is the advisory lock key of a record's control ID: two batches holding records
// with the same one are serialised, so that the later one sees the earlier one's message (a
// resend, or a control ID used for another message) rather than race it.
func resendLockKey(rec *ingest.Record) (key int32, ok bool) {
	if !prechecks(rec) {
		return 0, false
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%d|%s|%s", rec.Sender.SiteID, rec.Env, rec.ControlID)
	return int32(h.Sum32()), true
}

// lockLinkKeys takes, at the start of a transaction and in ascending order, the advisory locks of
// the linking blocks of recs and of their control IDs (resendLockKey). Taking them all up front
// and in order means a transaction never waits for one while holding row locks, so these locks
// cannot take part in a deadlock between concurrent batches; records of the same block (or with
// the same control ID) in different shards are serialised.
func lockLinkKeys(ctx context.Context, tx pgx.Tx, recs []*ingest.Record) error {
	type lock struct{ class, key int32 }
	var locks []lock
	for _, rec := range recs {
		if k, ok := linkKey(rec); ok {
			locks = append(locks, lock{linkLockClass, k})
		}
		if k, ok := resendLockKey(rec); ok {
			locks = append(locks, lock{resendLockClass, k})
		}
	}
	if len(locks) == 0 {
		return nil
	}
	slices.SortFunc(locks, func(a, b lock) int {
		if a.class != b.class {
			return cmp.Compare(a.class, b.class)
		}
		return cmp.Compare(a.key, b.key)
	})
	locks = slices.Compact(locks)
	classes, keys := make([]int32, len(locks)), make([]int32, len(locks))
	for i, l := range locks {
		classes[i], keys[i] = l.class, l.key
	}
	// WITH ORDINALITY ... ORDER BY keeps the arrays' (ascending) order of acquisition.
	if _, err := tx.Exec(ctx, `SELECT count(pg_advisory_xact_lock(c, k))
		FROM (SELECT c, k FROM unnest($1::int4[], $2::int4[]) WITH ORDINALITY AS u(c, k, i) ORDER BY i) s`,
		classes, keys); err != nil {
		return fmt.Errorf("store: lock linking blocks and control IDs: %w", err)
	}
	return nil
}

// storeVXU stores one accepted message: the patient as known to the sending organization, its
// link to a registry patient, the data-sharing status and the vaccinations with their RXA-21
// actions. Rows reference the message (report_messages); what they do not keep as columns (the
// full PID/PD1, next of kin, observations, ORC/RXA/RXR) is read back from it.
//
// It returns the warnings the sender must get about what the registry holds: updates and
// deletions of vaccinations it does not hold (0357 code 204), which change nothing.
func (r *registry) storeVXU(ctx context.Context, tx pgx.Tx, view *batchView, rec *ingest.Record, msgID int64) ([]ack.Finding, error) {
	v := rec.VXU
	pt := &v.Patient
	id := pt.PrimaryID()
	key, ok := keyOf(rec)
	if !ok {
		return nil, errors.New("store: patient has no identifier")
	}
	d := view.demographics(rec)
	var err error
	orgID := rec.Sender.OrganizationID

	var patientID, regID int64
	if known := view.patient(key); known == nil {
		l := link(view, rec.Env, d)
		if l.regID == 0 {
			if regID, err = r.createRegistryPatient(ctx, tx, view, rec, d, msgID); err != nil {
				return nil, err
			}
		} else {
			regID = l.regID
			if err := r.updateRegistryPatient(ctx, tx, view, rec, d, regID, msgID); err != nil {
				return nil, err
			}
		}
		patientID, err = insertID(ctx, tx, "patients", `INSERT INTO patients (env, organization_id, id_value, id_authority, id_type,
				registry_patient_id, family_name, given_name, middle_name, birth_date, sex, mother_maiden,
				postal_code, protection, report_messages,
				match_family, match_given, match_mother, match_street)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ARRAY[$15::bigint], $16, $17, $18, $19)
			RETURNING id`,
			rec.Env, orgID, id.Value, id.Authority, id.Type, regID, d.name.Family, d.name.Given, d.name.Middle,
			d.birth, d.sex, d.mother, d.zip, pt.Protection, msgID,
			d.matchFamily, d.matchGiven, d.matchMother, d.matchStreet)
		if err != nil {
			return nil, fmt.Errorf("store: insert patient: %w", err)
		}
		view.putPatient(&viewPatient{id: patientID, regID: regID, key: key, c: *d})
		if len(l.candidates) > 0 {
			if err := openReview(ctx, tx, rec.Env, "possible-duplicate", regID, patientID, l.candidateIDs(), nil,
				map[string]any{"candidates": l.candidates}, msgID); err != nil {
				return nil, err
			}
		}
	} else {
		patientID, regID = known.id, known.regID
		// The latest report is the sender's current view; every report stays archived, referenced
		// by report_messages.
		if _, err := tx.Exec(ctx, `UPDATE patients SET family_name = $2, given_name = $3, middle_name = $4,
				birth_date = $5, sex = $6, mother_maiden = $7, postal_code = $8, protection = $9,
				report_messages = report_messages || $10::bigint, match_family = $11, match_given = $12,
				match_mother = $13, match_street = $14, updated_at = now()
			WHERE id = $1`,
			patientID, d.name.Family, d.name.Given, d.name.Middle, d.birth, d.sex, d.mother, d.zip,
			pt.Protection, msgID, d.matchFamily, d.matchGiven, d.matchMother, d.matchStreet); err != nil {
			return nil, fmt.Errorf("store: update patient: %w", err)
		}
		view.setDemographics(known, d)
		if err := r.updateRegistryPatient(ctx, tx, view, rec, d, regID, msgID); err != nil {
			return nil, err
		}
	}
	p := patientRef{id: patientID, regID: regID}
	var unknown []ack.Finding
	for i := range v.Orders {
		f, err := r.storeOrder(ctx, tx, view, rec, &v.Orders[i], p, msgID)
		if err != nil {
			return nil, err
		}
		if f != nil {
			unknown = append(unknown, *f)
		}
	}
	return unknown, nil
}

// --- linking ---

// linkEvidence says, for one candidate registry patient, which identifying fields agreed,
// conflicted or differed. It names fields, never their values: it is stored for review.
type linkEvidence struct {
	RegistryPatientID int64    `json:"registry_patient_id"`
	Match             string   `json:"match"` // "strong" or "weak"
	Agree             []string `json:"agree,omitempty"`
	Conflict          []string `json:"conflict,omitempty"`
	Differ            []string `json:"differ,omitempty"`
}

type linkResult struct {
	regID      int64          // the registry patient to link to; 0: create one
	candidates []linkEvidence // when not linked: the registry patients it may be (for review)
}

func (l linkResult) candidateIDs() []int64 {
	ids := make([]int64, len(l.candidates))
	for i, c := range l.candidates {
		ids[i] = c.RegistryPatientID
	}
	return ids
}

// compareDemographics applies the deterministic rules to a reported patient (in) and one sender
// patient already linked to a registry patient (c), both in the same block (environment, birth
// date, normalised family name) and with the same normalised given name:
//   - conflicts (the same person is unlikely): both sexes definite and different; both mothers'
//     maiden names given and different;
//   - corroboration: mothers' maiden names equal; the same street line (and ZIP, when both have
//     one);
//   - strong: no conflict and at least one corroboration. Name and birth date alone are not
//     enough: in a state's population several children share them.
func compareDemographics(in, c *demographics) linkEvidence {
	var e linkEvidence
	if s1, s2 := definiteSex(in.sex), definiteSex(c.sex); s1 != "" && s2 != "" && s1 != s2 {
		e.Conflict = append(e.Conflict, "sex")
	}
	if in.matchMother != "" && c.matchMother != "" {
		if in.matchMother == c.matchMother {
			e.Agree = append(e.Agree, "mother_maiden_name")
		} else {
			e.Conflict = append(e.Conflict, "mother_maiden_name")
		}
	}
	if in.matchStreet != "" && c.matchStreet != "" {
		z1, z2 := zip5(in.zip), zip5(c.zip)
		if in.matchStreet == c.matchStreet && (z1 == "" || z2 == "" || z1 == z2) {
			e.Agree = append(e.Agree, "address")
		} else {
			// Families move: a different address is no conflict, but it corroborates nothing.
			e.Differ = append(e.Differ, "address")
		}
	}
	e.Match = "weak"
	if len(e.Conflict) == 0 && len(e.Agree) > 0 {
		e.Match = "strong"
	}
	return e
}

// link finds the registry patient a newly seen sender patient is: exactly one candidate, strongly
// matched (see compareDemographics), is linked; none means a new registry patient; anything else
// (several candidates, or only weak ones) also means a new registry patient, and the candidates
// are returned for review rather than merged: a wrong merge shows a child another child's doses.
// The candidates come from the batch's view; the caller holds the block's advisory lock
// (lockLinkKeys).
func link(view *batchView, env string, d *demographics) linkResult {
	best := map[int64]linkEvidence{}
	var order []int64
	for _, c := range view.candidates(env, d) {
		e := compareDemographics(d, &c.c)
		e.RegistryPatientID = c.regID
		prev, seen := best[c.regID]
		if !seen {
			order = append(order, c.regID)
		}
		// A registry patient matches as well as the best of its sender patients.
		if !seen || (prev.Match == "weak" && e.Match == "strong") {
			best[c.regID] = e
		}
	}
	if len(order) == 1 && best[order[0]].Match == "strong" {
		return linkResult{regID: order[0]}
	}
	var res linkResult
	for _, id := range order {
		res.candidates = append(res.candidates, best[id])
	}
	return res
}

func openReview(ctx context.Context, tx pgx.Tx, env, kind string, regID int64, patientID int64, candidates, vaccinations []int64, evidence any, msgID int64) error {
	ev, err := json.Marshal(evidence)
	if err != nil {
		return fmt.Errorf("store: encode review evidence: %w", err)
	}
	if candidates == nil {
		candidates = []int64{}
	}
	if vaccinations == nil {
		vaccinations = []int64{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO registry_reviews (env, kind, registry_patient_id, patient_id,
			candidates, vaccination_ids, evidence, message_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		env, kind, regID, patientID, candidates, vaccinations, ev, msgID); err != nil {
		return fmt.Errorf("store: open %s review: %w", kind, err)
	}
	return nil
}

// createRegistryPatient creates the registry patient of a sender patient that links to none, with
// its initial data-sharing status.
func (r *registry) createRegistryPatient(ctx context.Context, tx pgx.Tx, view *batchView, rec *ingest.Record, d *demographics, msgID int64) (int64, error) {
	status, source, reason := initialSharing(rec)
	regID, err := insertID(ctx, tx, "registry_patients", `INSERT INTO registry_patients (env, family_name, given_name, middle_name,
			birth_date, sex, mother_maiden, postal_code, sharing)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		rec.Env, d.name.Family, d.name.Given, d.name.Middle, d.birth, d.sex, d.mother, d.zip, status)
	if err != nil {
		return 0, fmt.Errorf("store: insert registry patient: %w", err)
	}
	view.sharing[regID] = status
	if err := recordSharingChange(ctx, tx, rec, regID, "", status, source, reason, msgID); err != nil {
		return 0, err
	}
	return regID, nil
}

// updateRegistryPatient brings a registry patient up to date with a later report (the latest
// non-empty value of each field wins; every report is kept in patient_reports) and applies what
// the report may change of its data-sharing status. It locks the registry patient's row, which
// serialises the writers of one person across the writer's shards (the batch's prefetch locked it).
func (r *registry) updateRegistryPatient(ctx context.Context, tx pgx.Tx, view *batchView, rec *ingest.Record, d *demographics, regID, msgID int64) error {
	current, ok := view.sharing[regID]
	if !ok {
		return fmt.Errorf("store: registry patient %d was not looked up", regID)
	}
	next, source, reason := sharingUpdate(rec, current)
	view.sharing[regID] = next
	if _, err := tx.Exec(ctx, `UPDATE registry_patients SET
			family_name = CASE WHEN $2 = '' THEN family_name ELSE $2 END,
			given_name = CASE WHEN $3 = '' THEN given_name ELSE $3 END,
			middle_name = CASE WHEN $3 = '' THEN middle_name ELSE $4 END,
			birth_date = COALESCE($5, birth_date),
			sex = CASE WHEN $6 = '' THEN sex ELSE $6 END,
			mother_maiden = CASE WHEN $7 = '' THEN mother_maiden ELSE $7 END,
			postal_code = CASE WHEN $8 = '' THEN postal_code ELSE $8 END,
			sharing = $9, updated_at = now()
		WHERE id = $1`,
		regID, d.name.Family, d.name.Given, d.name.Middle, d.birth, d.sex, d.mother, d.zip, next); err != nil {
		return fmt.Errorf("store: update registry patient: %w", err)
	}
	if next != current {
		return recordSharingChange(ctx, tx, rec, regID, current, next, source, reason, msgID)
	}
	return nil
}

// --- data sharing ---

// Sources of a data-sharing status (sharing_changes.source).
const (
	sharingSourcePolicy = "policy" // the registry's rules (default, go-live, historical only)
	sharingSourceHL7    = "hl7"    // PD1-12, where the policy honours it
)

// initialSharing is the data-sharing status of a registry patient first known from rec: PD1-12
// where the policy honours it; Unknown for a report received before the site's go-live date
// (backload) or for a patient reported with no immunization encounter (historical only); Yes
// otherwise.
func initialSharing(rec *ingest.Record) (status, source, reason string) {
	if rec.Sharing.HonorPD1 {
		switch rec.VXU.Patient.Protection {
		case "Y":
			return "N", sharingSourceHL7, "PD1-12 = Y (protection requested)"
		case "N":
			return "Y", sharingSourceHL7, "PD1-12 = N"
		}
	}
	switch {
	case rec.Sharing.PreGoLive:
		return "U", sharingSourcePolicy, "reported before the site's go-live date"
	case !hasEncounter(rec.VXU):
		return "U", sharingSourcePolicy, "historical reports only, no immunization encounter"
	}
	return "Y", sharingSourcePolicy, "default"
}

// sharingUpdate is what a later report changes of an existing status: PD1-12 where the policy
// honours it (under the default policy it never does: an objection is recorded in the registry by
// an authorized user), and Unknown resolved to Yes by an immunization encounter reported after
// go-live. Yes and No are never changed by the registry's own rules.
func sharingUpdate(rec *ingest.Record, current string) (next, source, reason string) {
	if rec.Sharing.HonorPD1 {
		switch rec.VXU.Patient.Protection {
		case "Y":
			return "N", sharingSourceHL7, "PD1-12 = Y (protection requested)"
		case "N":
			return "Y", sharingSourceHL7, "PD1-12 = N"
		}
	}
	if current == "U" && !rec.Sharing.PreGoLive && hasEncounter(rec.VXU) {
		return "Y", sharingSourcePolicy, "immunization encounter reported"
	}
	return current, "", ""
}

// hasEncounter reports an immunization encounter in the message: a vaccination event the sender
// itself recorded (administered dose, refusal, evidence of immunity, not administered), as
// opposed to a historical record (RXA-9 other than 00) or a deletion.
func hasEncounter(v *ingest.VXU) bool {
	for i := range v.Orders {
		o := &v.Orders[i]
		if o.ActionCode == "D" || o.Historical() {
			continue
		}
		if _, ok := orderKind(o); ok {
			return true
		}
	}
	return false
}

// recordSharingChange audits a status set or changed by a message: in sharing_changes (the
// patient's sharing history; old "" is the initial status) and, for a change of an existing
// status, in the admin audit log, where registry staff and the site's administrators list every
// data-sharing change.
func recordSharingChange(ctx context.Context, tx pgx.Tx, rec *ingest.Record, regID int64, old, next, source, reason string, msgID int64) error {
	var oldArg any
	if old != "" {
		oldArg = old
	}
	changeID, err := insertID(ctx, tx, "sharing_changes", `INSERT INTO sharing_changes (registry_patient_id, old_status, new_status, source, reason, message_id)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, regID, oldArg, next, source, reason, msgID)
	if err != nil {
		return fmt.Errorf("store: record sharing status: %w", err)
	}
	if old == "" {
		return nil
	}
	before, _ := json.Marshal(map[string]string{"sharing": old})
	after, _ := json.Marshal(map[string]any{"sharing": next, "source": source, "reason": reason,
		"message_id": msgID, "sharing_change_id": changeID})
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (at, actor, action, target_type, target_id, site_ids, before, after)
		VALUES (now(), $1, 'patient.set_sharing', 'patient', $2, $3, $4, $5)`,
		"hl7 message from site "+rec.Sender.SiteCode, fmt.Sprint(regID), []int64{rec.Sender.SiteID}, before, after); err != nil {
		return fmt.Errorf("store: audit sharing change: %w", err)
	}
	return nil
}

// --- vaccinations ---

type patientRef struct{ id, regID int64 }

// Vaccination kinds (vaccinations.kind).
const (
	kindDose            = "dose"
	kindRefusal         = "refusal"
	kindImmunity        = "immunity"
	kindNotAdministered = "not_administered"
)

// orderKind is what an order group records. ok is false for CVX 998 ("no vaccine administered")
// without evidence of immunity: there is nothing to record.
func orderKind(o *ingest.Order) (kind string, ok bool) {
	switch {
	case o.CompletionStatus == "RE":
		return kindRefusal, true
	case codes.NormalizeCVX(o.CVX) == "998":
		return kindImmunity, hasImmunityEvidence(o)
	case o.CompletionStatus == "NA":
		return kindNotAdministered, true
	}
	return kindDose, true
}

// hasImmunityEvidence reports an OBX 59784-9 (disease with presumed immunity) in the group.
func hasImmunityEvidence(o *ingest.Order) bool {
	for _, ob := range o.Observations {
		if ob.Identifier.Code == "59784-9" {
			return true
		}
	}
	return false
}

// doseKey groups reports of the same dose: the vaccine groups of the CVX (so that a historical
// "HepB, unspecified formulation" and the administered pediatric HepB of that day are one dose),
// else the CVX, else the NDC.
func (r *registry) doseKey(o *ingest.Order) string {
	cvx := codes.NormalizeCVX(o.CVX)
	if cvx == "" && o.NDC != "" {
		if n, ok := r.codes.NDC(o.NDC); ok {
			cvx = n.CVX
		}
	}
	if cvx == "" {
		return "ndc:" + o.NDC
	}
	if v, ok := r.codes.Vaccine(cvx); ok && len(v.Groups) > 0 {
		g := slices.Clone(v.Groups)
		slices.Sort(g)
		return "group:" + strings.Join(g, "+")
	}
	return "cvx:" + cvx
}

// orderNumber is ORC-3 as an identity: empty when absent or when it is the guide's placeholder
// 9999 for records of doses not given (refusals, not administered), which every such record of a
// sender carries and which therefore identifies none.
func orderNumber(o *ingest.Order) string {
	id, _, _ := strings.Cut(o.FillerOrder, "^")
	if id == "9999" {
		return ""
	}
	return o.FillerOrder
}

// vaccineCode is the sender-level identity of the vaccine: the CVX, else the NDC.
func vaccineCode(o *ingest.Order) string {
	if o.CVX != "" {
		return o.CVX
	}
	return "ndc:" + o.NDC
}

// storeOrder applies one order group. Identity (SPEC §2.6): the sender's ORC-3 when present, else
// the sender's patient + vaccine + administration date. RXA-21 D marks the vaccination entered in
// error (never deleted); A on an existing vaccination and U update it, U on an unknown one adds it.
// Reports of the same dose by other senders, or as administered and as historical, are kept as
// rows of their own and merged (reconcileDose).
//
// U naming an order number (ORC-3) the registry does not hold, and D of a vaccination it does not
// hold, change nothing: the sender gets the warning returned (0357 code 204, unknown key
// identifier) rather than believe it updated or deleted a record. (U without an order number of
// an event the registry does not hold adds it: nothing names another record.)
func (r *registry) storeOrder(ctx context.Context, tx pgx.Tx, view *batchView, rec *ingest.Record, o *ingest.Order, p patientRef, msgID int64) (*ack.Finding, error) {
	date := parseDate(o.AdministeredAt)
	if date == nil {
		return nil, nil // validation rejects such a group; nothing identifies the event
	}
	action := o.ActionCode
	if action == "" {
		action = "A"
	}
	kind, ok := orderKind(o)
	if !ok && action != "D" {
		return nil, nil // "no vaccine administered" without evidence of immunity records nothing
	}
	var err error
	group := int16(o.Group)
	historical := o.Historical()
	doseKey := r.doseKey(o)
	orgID := rec.Sender.OrganizationID
	filler := orderNumber(o)
	named := filler // the order number the sender named, kept for the warning

	var cur *viewVacc
	var conflict int64 // another patient's vaccination with this ORC-3
	if filler != "" {
		switch row := view.byOrderNumber(rec.Env, orgID, filler); {
		case row != nil && row.patientID == p.id:
			cur = row
		case row != nil:
			// The sender reused an order number for another patient. Moving the dose between
			// children on that evidence alone is too dangerous: record this report without the
			// order number and leave the pair for review.
			conflict, filler = row.id, ""
		}
	}
	if cur == nil {
		// The sender's own earlier report of this event without (another) order number. An
		// administered and a historical report are separate reports of the dose and are merged
		// instead; a deletion takes either, preferring the same kind of report.
		cur = view.byEvent(p.id, kind, *date, vaccineCode(o), filler != "", historical, action != "D")
	}
	// What the row was, for re-merging the dose group it leaves.
	var was viewVacc
	if cur != nil {
		was = *cur
	}

	// (U of an order number another patient holds is recorded without it, for review, below.)
	if cur == nil && (action == "D" || (action == "U" && named != "" && conflict == 0)) {
		return unknownKey(o, action, named, conflict != 0), nil // the message is archived
	}
	var vid int64
	switch {
	case action == "D":
		vid = cur.id
		if _, err := tx.Exec(ctx, `UPDATE vaccinations SET deleted = true, deleted_at = now(), merged_into = NULL,
			action_code = 'D', report_messages = report_messages || $2::bigint, report_groups = report_groups || $3::int2,
			updated_at = now() WHERE id = $1`, vid, msgID, group); err != nil {
			return nil, fmt.Errorf("store: delete vaccination: %w", err)
		}
		cur.deleted = true
	case cur != nil:
		vid = cur.id
		var fillerArg any
		if filler != "" {
			fillerArg = filler
		}
		if _, err := tx.Exec(ctx, `UPDATE vaccinations SET site_id = $2,
				filler_order_id = COALESCE(filler_order_id, $3), kind = $4, cvx = $5, ndc = $6, administered_on = $7,
				historical = $8, info_source = $9, amount = $10, amount_units = $11, lot = $12,
				lot_expiration = $13, mvx = $14, route = $15, body_site = $16, completion_status = $17,
				action_code = $18, refusal_reason = $19, report_messages = report_messages || $20::bigint,
				report_groups = report_groups || $21::int2, dose_key = $22,
				deleted = false, deleted_at = NULL, merged_into = NULL, updated_at = now()
			WHERE id = $1`,
			vid, rec.Sender.SiteID, fillerArg, kind, o.CVX, o.NDC, date,
			historical, o.InfoSource.Code, o.Amount, o.Units.Code, firstLot(o), parseDate(o.LotExpiration),
			o.Manufacturer.Code, o.Route.Code, o.BodySite.Code, o.CompletionStatus, action,
			o.RefusalReason.Code, msgID, group, doseKey); err != nil {
			return nil, fmt.Errorf("store: update vaccination: %w", err)
		}
		cur.kind, cur.code, cur.date, cur.historical, cur.doseKey, cur.deleted = kind, vaccineCode(o), *date, historical, doseKey, false
		view.setFiller(cur, filler)
	default:
		var fillerArg any
		if filler != "" {
			fillerArg = filler
		}
		if vid, err = insertID(ctx, tx, "vaccinations", `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id,
				site_id, filler_order_id, kind, cvx, ndc, administered_on, historical, info_source, amount,
				amount_units, lot, lot_expiration, mvx, route, body_site, completion_status, action_code,
				refusal_reason, report_messages, report_groups, dose_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
				$21, $22, ARRAY[$23::bigint], ARRAY[$24::int2], $25) RETURNING id`,
			rec.Env, p.id, p.regID, orgID, rec.Sender.SiteID, fillerArg, kind, o.CVX, o.NDC,
			date, historical, o.InfoSource.Code, o.Amount, o.Units.Code, firstLot(o), parseDate(o.LotExpiration),
			o.Manufacturer.Code, o.Route.Code, o.BodySite.Code, o.CompletionStatus, action,
			o.RefusalReason.Code, msgID, group, doseKey); err != nil {
			return nil, fmt.Errorf("store: insert vaccination: %w", err)
		}
		view.addVacc(&viewVacc{id: vid, patientID: p.id, env: rec.Env, org: orgID, filler: filler, kind: kind,
			doseKey: doseKey, code: vaccineCode(o), date: *date, historical: historical})
		if conflict != 0 {
			if err := openReview(ctx, tx, rec.Env, "order-number-conflict", p.regID, p.id, nil,
				[]int64{conflict, vid}, map[string]string{"order_number": "ORC-3 reused for another patient"}, msgID); err != nil {
				return nil, err
			}
		}
	}
	// Re-merge the dose groups the row left and joined.
	if cur != nil && was.kind == kindDose && (action == "D" || kind != kindDose || !was.date.Equal(*date) || was.doseKey != doseKey) {
		if err := reconcileDose(ctx, tx, p.regID, was.date, was.doseKey); err != nil {
			return nil, err
		}
	}
	if action != "D" && kind == kindDose {
		if err := reconcileDose(ctx, tx, p.regID, *date, doseKey); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// unknownKey is the warning for an update (U) or deletion (D) of a vaccination the registry does
// not hold for this patient from the sender's organization: it names the order number (ORC-3)
// when there is one, else the vaccine and date that identify the event.
func unknownKey(o *ingest.Order, action, order string, otherPatient bool) *ack.Finding {
	verb, done := "update", "nothing was changed. To add the vaccination, send it with RXA-21 = A."
	if action == "D" {
		verb, done = "delete", "nothing was deleted."
	}
	var text string
	switch {
	case otherPatient:
		text = fmt.Sprintf("RXA-21 = %s (%s) names order %s (ORC-3), which the registry holds for another patient of your organization: %s Check the order number and the patient.",
			action, verb, order, done)
	case order != "":
		text = fmt.Sprintf("RXA-21 = %s (%s) names order %s (ORC-3), which the registry does not hold for this patient from your organization: %s",
			action, verb, order, done)
	default:
		text = fmt.Sprintf("RXA-21 = %s (%s): the registry holds no vaccination %s of %s for this patient from your organization: %s",
			action, verb, vaccineCode(o), o.AdministeredAt, done)
	}
	return &ack.Finding{
		Rule: "rxa-21-unknown-key", Location: ack.Location{Segment: "RXA", Sequence: o.Group, Field: 21},
		Code: ack.CodeUnknownKey, Severity: ack.Warning, App: ack.AppInvalidValue, Group: o.Group,
		Text: text,
	}
}

// reconcileDose merges the current reports of one dose (registry patient, administration date,
// dose key): the survivor is the earliest administered report, else the earliest historical one;
// the other historical reports are merged into it. Administered reports stay separate: two
// organizations both saying they gave the dose is for a person to sort out, not to hide. The
// registry patient's row is locked by the caller, so concurrent writers of the same person are
// serialised and see each other's reports.
func reconcileDose(ctx context.Context, tx pgx.Tx, regID int64, date time.Time, doseKey string) error {
	if _, err := tx.Exec(ctx, `
		WITH g AS (
			SELECT id, CASE WHEN historical AND id <> first_value(id) OVER (ORDER BY historical, id)
			                THEN first_value(id) OVER (ORDER BY historical, id) END AS into_id
			FROM vaccinations
			WHERE registry_patient_id = $1 AND administered_on = $2 AND dose_key = $3
			  AND kind = 'dose' AND NOT deleted
		)
		UPDATE vaccinations v SET merged_into = g.into_id, updated_at = now()
		FROM g WHERE v.id = g.id AND v.merged_into IS DISTINCT FROM g.into_id`,
		regID, date, doseKey); err != nil {
		return fmt.Errorf("store: merge reports of a dose: %w", err)
	}
	return nil
}

func firstLot(o *ingest.Order) string {
	if len(o.Lots) > 0 {
		return o.Lots[0]
	}
	return ""
}

// parseDate reads the date part of an HL7 DTM (YYYYMMDD...); nil when it is not a valid date.
func parseDate(s string) *time.Time {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return nil
	}
	t, err := time.Parse("20060102", s[:8])
	if err != nil {
		return nil
	}
	return &t
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1e8 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
