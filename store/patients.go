package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
)

// ErrPatientNotFound is returned for a registry patient or sender patient that does not exist.
var ErrPatientNotFound = errors.New("store: patient not found")

// PatientRecord is a registry patient's consolidated record: what the registry shows about a
// person, from every sender that reported them. It is the read path for the admin API, queries
// and exports; data-sharing rules (who may see it) are applied by the caller, which has the
// status here.
type PatientRecord struct {
	ID  int64  `json:"id"`
	Env string `json:"env"` // "P" or "T"
	// Demographics are the latest non-empty values reported by any sender.
	FamilyName   string     `json:"family_name"`
	GivenName    string     `json:"given_name"`
	MiddleName   string     `json:"middle_name,omitempty"`
	BirthDate    *time.Time `json:"birth_date,omitempty"`
	Sex          string     `json:"sex,omitempty"`
	MotherMaiden string     `json:"mother_maiden,omitempty"`
	PostalCode   string     `json:"postal_code,omitempty"`
	// Sharing is the data-sharing status: Y, N or U.
	Sharing        string          `json:"sharing"`
	SharingHistory []SharingChange `json:"sharing_history"`
	// Senders are the patients as each organization identifies them, linked to this person.
	Senders []SenderPatient `json:"senders"`
	// Vaccinations are the current vaccination events, oldest first: not entered in error, and not
	// merged into another report of the same dose. Kind says what each is (Doses, Refusals,
	// Immunities select them).
	Vaccinations []Vaccination `json:"vaccinations"`
	// Reviews are the open review items about this person (possible duplicates, order number
	// conflicts), whether they were the one created or a candidate.
	Reviews   []Review  `json:"reviews"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SharingChange is one entry of a patient's data-sharing history. OldStatus is empty for the
// initial status.
type SharingChange struct {
	OldStatus string    `json:"old_status,omitempty"`
	NewStatus string    `json:"new_status"`
	Source    string    `json:"source"` // "policy", "hl7", "admin"
	Reason    string    `json:"reason,omitempty"`
	FormRef   string    `json:"form_ref,omitempty"`
	UserID    *int64    `json:"user_id,omitempty"`
	MessageID *int64    `json:"message_id,omitempty"`
	ChangedAt time.Time `json:"changed_at"`
}

// SenderPatient is a patient as one organization identifies them (PID-3), with what it last
// reported.
type SenderPatient struct {
	ID               int64             `json:"id"`
	OrganizationID   int64             `json:"organization_id"`
	OrganizationCode string            `json:"organization_code"`
	HealthSystemID   int64             `json:"health_system_id"` // the parent organization, else the organization
	Identifier       ingest.Identifier `json:"identifier"`
	// Demographics is the PID/PD1 of the latest report, read back from the archived message
	// (every report stays archived; Reports counts them).
	Demographics ingest.Patient `json:"demographics"`
	// Protection is PD1-12 as last reported: recorded whatever the policy makes of it.
	Protection   string               `json:"protection,omitempty"`
	Reports      int                  `json:"reports"`
	NextOfKin    []ingest.NextOfKin   `json:"next_of_kin"`  // NK1 of the latest report
	Observations []ingest.Observation `json:"observations"` // patient-level OBX of the latest report
	UpdatedAt    time.Time            `json:"updated_at"`
}

// Source says who reported a vaccination.
type Source struct {
	OrganizationID   int64  `json:"organization_id"`
	OrganizationCode string `json:"organization_code"`
	HealthSystemID   int64  `json:"health_system_id"`
	SiteID           int64  `json:"site_id"`
	SiteCode         string `json:"site_code"`
	PatientID        int64  `json:"patient_id"` // the sender patient
}

// Vaccination is a vaccination event of the consolidated record.
type Vaccination struct {
	ID               int64      `json:"id"`
	Kind             string     `json:"kind"` // "dose", "refusal", "immunity", "not_administered"
	CVX              string     `json:"cvx,omitempty"`
	NDC              string     `json:"ndc,omitempty"`
	AdministeredOn   time.Time  `json:"administered_on"`
	Historical       bool       `json:"historical"`
	InfoSource       string     `json:"info_source,omitempty"`
	Amount           string     `json:"amount,omitempty"`
	AmountUnits      string     `json:"amount_units,omitempty"`
	Lot              string     `json:"lot,omitempty"`
	LotExpiration    *time.Time `json:"lot_expiration,omitempty"`
	MVX              string     `json:"mvx,omitempty"`
	Route            string     `json:"route,omitempty"`
	BodySite         string     `json:"body_site,omitempty"`
	CompletionStatus string     `json:"completion_status,omitempty"`
	ActionCode       string     `json:"action_code,omitempty"`
	RefusalReason    string     `json:"refusal_reason,omitempty"`
	OrderNumber      string     `json:"order_number,omitempty"` // ORC-3
	Source           Source     `json:"source"`
	// Details is the decoded ORC/RXA/RXR of the latest report (texts, providers, all lots).
	Details ingest.Order `json:"details"`
	// Observations are the OBX of the latest report about this vaccination (funding eligibility,
	// VIS, evidence of immunity).
	Observations []ingest.Observation `json:"observations"`
	// Merged are the other reports of this dose (by other senders, or as historical records).
	Merged    []MergedReport `json:"merged,omitempty"`
	Reports   int            `json:"reports"` // messages that reported this record
	UpdatedAt time.Time      `json:"updated_at"`
}

// MergedReport is another report of the same dose, merged into the one shown.
type MergedReport struct {
	VaccinationID int64  `json:"vaccination_id"`
	CVX           string `json:"cvx,omitempty"`
	Historical    bool   `json:"historical"`
	InfoSource    string `json:"info_source,omitempty"`
	Source        Source `json:"source"`
}

// Review is an open item for registry staff.
type Review struct {
	ID                int64           `json:"id"`
	Kind              string          `json:"kind"` // "possible-duplicate", "order-number-conflict"
	RegistryPatientID int64           `json:"registry_patient_id"`
	PatientID         *int64          `json:"patient_id,omitempty"`
	Candidates        []int64         `json:"candidates,omitempty"`
	VaccinationIDs    []int64         `json:"vaccination_ids,omitempty"`
	Evidence          json.RawMessage `json:"evidence"`
	Status            string          `json:"status"`
	CreatedAt         time.Time       `json:"created_at"`
}

// Doses returns the current doses (administered and historical).
func (p *PatientRecord) Doses() []Vaccination { return p.ofKind("dose") }

// Refusals returns the recorded refusals.
func (p *PatientRecord) Refusals() []Vaccination { return p.ofKind("refusal") }

// Immunities returns the recorded evidence of immunity.
func (p *PatientRecord) Immunities() []Vaccination { return p.ofKind("immunity") }

func (p *PatientRecord) ofKind(kind string) []Vaccination {
	var out []Vaccination
	for _, v := range p.Vaccinations {
		if v.Kind == kind {
			out = append(out, v)
		}
	}
	return out
}

// RegistryPatientID returns the registry patient a sending organization's patient identifier
// (PID-3 value, assigning authority, type) belongs to in an environment, or ErrPatientNotFound.
func (db *DB) RegistryPatientID(ctx context.Context, env string, organizationID int64, id ingest.Identifier) (int64, error) {
	var regID int64
	err := db.Pool.QueryRow(ctx, `SELECT registry_patient_id FROM patients
		WHERE env = $1 AND organization_id = $2 AND id_value = $3 AND id_authority = $4 AND id_type = $5`,
		env, organizationID, id.Value, id.Authority, id.Type).Scan(&regID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrPatientNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("store: find registry patient: %w", err)
	}
	return regID, nil
}

// OpenReviews lists the open review items of an environment, oldest first.
func (db *DB) OpenReviews(ctx context.Context, env string) ([]Review, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+reviewColumns+` FROM registry_reviews
		WHERE env = $1 AND status = 'open' ORDER BY created_at, id`, env)
	if err != nil {
		return nil, fmt.Errorf("store: list reviews: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanReview)
	if err != nil {
		return nil, fmt.Errorf("store: list reviews: %w", err)
	}
	return out, nil
}

const reviewColumns = `id, kind, registry_patient_id, patient_id, candidates, vaccination_ids, evidence, status, created_at`

func scanReview(row pgx.CollectableRow) (Review, error) {
	var r Review
	var ev []byte
	err := row.Scan(&r.ID, &r.Kind, &r.RegistryPatientID, &r.PatientID, &r.Candidates, &r.VaccinationIDs, &ev, &r.Status, &r.CreatedAt)
	r.Evidence = ev
	return r, err
}

// PatientRecord returns a registry patient's consolidated record, read in one consistent
// snapshot, or ErrPatientNotFound.
func (db *DB) PatientRecord(ctx context.Context, registryPatientID int64) (*PatientRecord, error) {
	var p *PatientRecord
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var err error
			p, err = readPatientRecord(ctx, tx, registryPatientID)
			return err
		})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func readPatientRecord(ctx context.Context, tx pgx.Tx, id int64) (*PatientRecord, error) {
	p := &PatientRecord{ID: id, SharingHistory: []SharingChange{}, Senders: []SenderPatient{},
		Vaccinations: []Vaccination{}, Reviews: []Review{}}
	var env, sharing string
	err := tx.QueryRow(ctx, `SELECT env, family_name, given_name, middle_name, birth_date, sex, mother_maiden,
			postal_code, sharing, updated_at
		FROM registry_patients WHERE id = $1`, id).Scan(&env, &p.FamilyName, &p.GivenName, &p.MiddleName,
		&p.BirthDate, &p.Sex, &p.MotherMaiden, &p.PostalCode, &sharing, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrPatientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read registry patient: %w", err)
	}
	p.Env, p.Sharing = strings.TrimSpace(env), strings.TrimSpace(sharing)

	if err := readSharingHistory(ctx, tx, p); err != nil {
		return nil, err
	}
	var ar archiveReader
	if err := readSenders(ctx, tx, p, &ar); err != nil {
		return nil, err
	}
	if err := readVaccinations(ctx, tx, p, &ar); err != nil {
		return nil, err
	}
	if err := ar.read(ctx, tx); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT `+reviewColumns+` FROM registry_reviews
		WHERE status = 'open' AND (registry_patient_id = $1 OR candidates @> ARRAY[$1::bigint])
		ORDER BY created_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("store: read reviews: %w", err)
	}
	if p.Reviews, err = pgx.CollectRows(rows, scanReview); err != nil {
		return nil, fmt.Errorf("store: read reviews: %w", err)
	}
	if p.Reviews == nil {
		p.Reviews = []Review{}
	}
	return p, nil
}

func readSharingHistory(ctx context.Context, tx pgx.Tx, p *PatientRecord) error {
	rows, err := tx.Query(ctx, `SELECT coalesce(old_status, ''), new_status, source, reason, form_ref, user_id,
			message_id, changed_at
		FROM sharing_changes WHERE registry_patient_id = $1 ORDER BY changed_at, id`, p.ID)
	if err != nil {
		return fmt.Errorf("store: read sharing history: %w", err)
	}
	p.SharingHistory, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (SharingChange, error) {
		var c SharingChange
		err := row.Scan(&c.OldStatus, &c.NewStatus, &c.Source, &c.Reason, &c.FormRef, &c.UserID, &c.MessageID, &c.ChangedAt)
		c.OldStatus, c.NewStatus = strings.TrimSpace(c.OldStatus), strings.TrimSpace(c.NewStatus)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("store: read sharing history: %w", err)
	}
	if p.SharingHistory == nil {
		p.SharingHistory = []SharingChange{}
	}
	return nil
}

func readSenders(ctx context.Context, tx pgx.Tx, p *PatientRecord, ar *archiveReader) error {
	rows, err := tx.Query(ctx, `
		SELECT pt.id, pt.organization_id, o.code, coalesce(o.parent_id, o.id), pt.id_value, pt.id_authority,
		       pt.id_type, pt.protection, pt.updated_at, cardinality(pt.report_messages),
		       pt.report_messages[cardinality(pt.report_messages)]
		FROM patients pt JOIN organizations o ON o.id = pt.organization_id
		WHERE pt.registry_patient_id = $1 ORDER BY pt.id`, p.ID)
	if err != nil {
		return fmt.Errorf("store: read sender patients: %w", err)
	}
	for rows.Next() {
		s := SenderPatient{NextOfKin: []ingest.NextOfKin{}, Observations: []ingest.Observation{}}
		var last *int64
		if err := rows.Scan(&s.ID, &s.OrganizationID, &s.OrganizationCode, &s.HealthSystemID, &s.Identifier.Value,
			&s.Identifier.Authority, &s.Identifier.Type, &s.Protection, &s.UpdatedAt, &s.Reports, &last); err != nil {
			rows.Close()
			return fmt.Errorf("store: read sender patients: %w", err)
		}
		p.Senders = append(p.Senders, s)
		i := len(p.Senders) - 1
		if last != nil {
			// The PID/PD1, next of kin and patient-level observations of the latest report.
			ar.want(*last, func(v *ingest.VXU) {
				s := &p.Senders[i]
				s.Demographics = v.Patient
				s.NextOfKin = append(s.NextOfKin, v.NextOfKin...)
				s.Observations = append(s.Observations, v.Observations...)
			})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read sender patients: %w", err)
	}
	return nil
}

func readVaccinations(ctx context.Context, tx pgx.Tx, p *PatientRecord, ar *archiveReader) error {
	// Current and merged rows in one pass: the merged ones are attached to the one they merged into.
	rows, err := tx.Query(ctx, `
		SELECT v.id, v.merged_into, v.kind, v.cvx, v.ndc, v.administered_on, v.historical, v.info_source,
		       v.amount, v.amount_units, v.lot, v.lot_expiration, v.mvx, v.route, v.body_site,
		       v.completion_status, v.action_code, v.refusal_reason, coalesce(v.filler_order_id, ''),
		       v.organization_id, o.code, coalesce(o.parent_id, o.id), v.site_id, s.code, v.patient_id,
		       v.report_messages[cardinality(v.report_messages)], v.report_groups[cardinality(v.report_groups)],
		       v.updated_at, cardinality(v.report_messages)
		FROM vaccinations v
		JOIN organizations o ON o.id = v.organization_id
		JOIN sites s ON s.id = v.site_id
		WHERE v.registry_patient_id = $1 AND NOT v.deleted
		ORDER BY v.administered_on, v.id`, p.ID)
	if err != nil {
		return fmt.Errorf("store: read vaccinations: %w", err)
	}
	type merged struct {
		into int64
		r    MergedReport
	}
	type latest struct {
		msg   *int64
		group *int16
	}
	var pending []merged
	var reports []latest
	byID := map[int64]int{}
	for rows.Next() {
		var (
			v    Vaccination
			into *int64
			l    latest
		)
		if err := rows.Scan(&v.ID, &into, &v.Kind, &v.CVX, &v.NDC, &v.AdministeredOn, &v.Historical, &v.InfoSource,
			&v.Amount, &v.AmountUnits, &v.Lot, &v.LotExpiration, &v.MVX, &v.Route, &v.BodySite,
			&v.CompletionStatus, &v.ActionCode, &v.RefusalReason, &v.OrderNumber,
			&v.Source.OrganizationID, &v.Source.OrganizationCode, &v.Source.HealthSystemID, &v.Source.SiteID,
			&v.Source.SiteCode, &v.Source.PatientID, &l.msg, &l.group, &v.UpdatedAt, &v.Reports); err != nil {
			rows.Close()
			return fmt.Errorf("store: read vaccinations: %w", err)
		}
		if into != nil {
			pending = append(pending, merged{into: *into, r: MergedReport{VaccinationID: v.ID, CVX: v.CVX,
				Historical: v.Historical, InfoSource: v.InfoSource, Source: v.Source}})
			continue
		}
		v.Observations = []ingest.Observation{}
		byID[v.ID] = len(p.Vaccinations)
		p.Vaccinations = append(p.Vaccinations, v)
		reports = append(reports, l)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read vaccinations: %w", err)
	}
	for _, m := range pending {
		if i, ok := byID[m.into]; ok {
			p.Vaccinations[i].Merged = append(p.Vaccinations[i].Merged, m.r)
		}
	}
	for i, l := range reports {
		if l.msg == nil || l.group == nil {
			continue
		}
		group := int(*l.group)
		ar.want(*l.msg, func(m *ingest.VXU) {
			// The ORC/RXA/RXR and observations of the vaccination's order group in its latest report.
			for k := range m.Orders {
				o := &m.Orders[k]
				if o.Group != group {
					continue
				}
				v := &p.Vaccinations[i]
				v.Details = *o
				v.Details.Observations = nil
				// The CVX as the pipeline resolved it (RXA-5 in any coding system the code sets
				// know), which the row keeps.
				v.Details.CVX = v.CVX
				v.Observations = append(v.Observations, o.Observations...)
				return
			}
		})
	}
	return nil
}

// archiveReader reads, for one patient record, the archived messages its rows reference (the
// copy of record of what was reported), each once, with one query, and decodes them again.
type archiveReader struct {
	ids  []int64
	uses map[int64][]func(*ingest.VXU)
}

// want asks for message id's decoded content, given to use.
func (a *archiveReader) want(id int64, use func(*ingest.VXU)) {
	if a.uses == nil {
		a.uses = map[int64][]func(*ingest.VXU){}
	}
	if _, ok := a.uses[id]; !ok {
		a.ids = append(a.ids, id)
	}
	a.uses[id] = append(a.uses[id], use)
}

// read fetches and decodes the wanted messages, in tx, and gives each to its uses.
func (a *archiveReader) read(ctx context.Context, tx pgx.Tx) error {
	if len(a.ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id, raw, coalesce(charset, '') FROM messages WHERE id = ANY($1::bigint[])`, a.ids)
	if err != nil {
		return fmt.Errorf("store: read archived reports: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var id int64
		var raw []byte
		var charset string
		if err := rows.Scan(&id, &raw, &charset); err != nil {
			return fmt.Errorf("store: read archived reports: %w", err)
		}
		v, err := ingest.DecodeArchived(raw, charset, nil)
		if err != nil {
			return fmt.Errorf("store: archived message %d: %w", id, err)
		}
		for _, use := range a.uses[id] {
			use(v)
		}
		found++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read archived reports: %w", err)
	}
	if found != len(a.ids) {
		return fmt.Errorf("store: read archived reports: %d of %d referenced messages are missing", len(a.ids)-found, len(a.ids))
	}
	return nil
}
