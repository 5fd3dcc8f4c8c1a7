package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/registry"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestBenchVerifyRecords runs `vaxgate bench` against a real serve, reads back the records of the
// patients it reported once, and finds them identical to what was sent; then it damages what the
// database holds and the same verification reports every sampled record, by field path, without
// a patient value in its output, and fails.
func TestBenchVerifyRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and sends a few hundred messages")
	}
	url := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	srv := runServe(t, "serve", "--demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The command as scripts run it: one line saying how many were sampled and identical.
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"bench", "--addr", srv.mllp, "--conns", "2", "--messages", "120", "--window", "4",
		"--run-id", "VC", "--verify-db", "env", "--verify-records", "10"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("bench --verify-records: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "records: 10 sampled, 10 identical (of ") {
		t.Fatalf("bench --verify-records printed:\n%s", out.String())
	}

	// A run whose every once-reported patient is sampled (updates included in its traffic).
	o := benchOptions{addr: srv.mllp, conns: 4, messages: 600, window: 4, facility: "X68", processing: "P",
		seed: 3, timeout: time.Minute, runID: "VR", updateShare: 0.1, verifyRecords: 1000, verifyDB: url}
	res, err := runBench(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.failed > 0 || res.sent != o.messages {
		t.Fatalf("run: %d sent, %d failed: %v", res.sent, res.failed, res.errors)
	}
	rr, err := verifyRecords(ctx, o, res, url)
	if err != nil {
		var b bytes.Buffer
		rr.print(&b)
		t.Fatalf("verify: %v\n%s", err, b.String())
	}
	// 600 messages over a population of 300: about 2/e² of the patients are reported once.
	if rr.sampled < 40 || rr.identical != rr.sampled || rr.sampled != rr.candidates {
		t.Fatalf("verify: %+v", rr)
	}
	t.Logf("verify: %d sampled, %d identical, %d doses shown merged", rr.sampled, rr.identical, rr.merged)

	// Damage what the database holds: every vaccination a day earlier.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE vaccinations SET administered_on = administered_on - 1`); err != nil {
		t.Fatal(err)
	}
	rr, err = verifyRecords(ctx, o, res, url)
	if err == nil || rr.identical != 0 || rr.differing != rr.sampled {
		t.Fatalf("verify after damage: err %v, %+v", err, rr)
	}
	var printed bytes.Buffer
	rr.print(&printed)
	text := printed.String()
	t.Logf("after damage:\n%s", text)
	if !strings.Contains(text, "sample 1 (message VR-") || !strings.Contains(text, "Vaccinations[order 1].AdministeredOn differs") {
		t.Errorf("the differences do not name the sample and the field:\n%s", text)
	}
	noPatientValues(t, o, res, text)

	// Where records are read back from the archived message (the lean storage: no decoded copy of
	// the order), a changed archived byte is a changed record too.
	var lean bool
	if err := conn.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_name = 'vaccinations' AND column_name = 'details')`).Scan(&lean); err != nil {
		t.Fatal(err)
	}
	if !lean {
		t.Log("vaccinations.details holds a decoded copy: the archived message is not read back, its damage not checked")
		return
	}
	if _, err := conn.Exec(ctx, `UPDATE vaccinations SET administered_on = administered_on + 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE messages SET raw = convert_to(replace(convert_from(raw, 'UTF8'),
		'|MTH^Mother^HL70063|', '|FTH^Mother^HL70063|'), 'UTF8') WHERE control_id LIKE 'VR-%'`); err != nil {
		t.Fatal(err)
	}
	rr, err = verifyRecords(ctx, o, res, url)
	printed.Reset()
	rr.print(&printed)
	text = printed.String()
	t.Logf("after damage to the archive:\n%s", text)
	if err == nil || rr.identical != 0 || !strings.Contains(text, "Senders[sender].NextOfKin[0].Relationship.Code differs") {
		t.Fatalf("verify after damage to the archive: err %v, %+v", err, rr)
	}
	noPatientValues(t, o, res, text)
}

// noPatientValues fails when text shows a patient value: the identifiers, names, birth dates and
// lots of every message of the run.
func noPatientValues(t *testing.T, o benchOptions, res *benchResult, text string) {
	t.Helper()
	for c := 0; c < o.conns; c++ {
		gen := benchGenerator(o, c, res.patients, res.now)
		for i := 0; i < o.messages/o.conns; i++ {
			m, err := hl7.Parse(gen.Next())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"PID-3-1", "PID-5-1", "PID-5-2", "PID-7", "PID-11-1", "NK1-2-2", "RXA-15"} {
				if v := m.Get(f); v != "" && strings.Contains(text, v) {
					t.Fatalf("the output shows %s of a patient:\n%s", f, text)
				}
			}
		}
	}
}

// TestCompareRecordFieldByField: the comparison finds a change in any field of what a record
// shows of a message, however deep, and names its path; a record as the message reported it
// compares identical.
func TestCompareRecordFieldByField(t *testing.T) {
	res, err := validate.New(validate.Options{Codes: codes.Default()})
	if err != nil {
		t.Fatal(err)
	}
	gen := vxugen.New(vxugen.Options{Seed: 11, ControlIDs: "CMP", Historical: 0.01, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	var sent *ingest.VXU
	for sent == nil || len(sent.Orders) != 1 || len(sent.Orders[0].Observations) != 4 {
		m, err := hl7.Parse(gen.Next())
		if err != nil {
			t.Fatal(err)
		}
		sent = ingest.DecodeWith(m, res)
	}
	sender := &ingest.Sender{SiteID: 3, SiteCode: "S", OrganizationID: 2}

	// The record the store would show of this message (a JSON round trip, as the API's).
	record := func() *store.PatientRecord {
		o := sent.Orders[0]
		details := o
		details.Observations = nil
		name := sent.Patient.LegalName()
		return &store.PatientRecord{
			ID: 1, Env: "P", FamilyName: name.Family, GivenName: name.Given, MiddleName: name.Middle,
			BirthDate: registry.ParseDate(sent.Patient.BirthDate), Sex: sent.Patient.Sex, MotherMaiden: sent.Patient.MotherMaiden.Family,
			PostalCode: registry.DemographicsOf(&sent.Patient).Zip,
			Senders: []store.SenderPatient{{ID: 9, OrganizationID: 2, Identifier: sent.Patient.PrimaryID(),
				Demographics: roundTrip(t, sent.Patient), Protection: sent.Patient.Protection,
				NextOfKin: roundTrip(t, sent.NextOfKin), Observations: []ingest.Observation{}}},
			Vaccinations: []store.Vaccination{{ID: 5, Kind: "dose", CVX: o.CVX, NDC: o.NDC, AdministeredOn: *registry.ParseDate(o.AdministeredAt),
				Historical: o.Historical(), InfoSource: o.InfoSource.Code, Amount: o.Amount, AmountUnits: o.Units.Code,
				Lot: o.Lots[0], LotExpiration: registry.ParseDate(o.LotExpiration), MVX: o.Manufacturer.Code, Route: o.Route.Code,
				BodySite: o.BodySite.Code, CompletionStatus: o.CompletionStatus, ActionCode: "A", OrderNumber: o.FillerOrder,
				Source:  store.Source{OrganizationID: 2, SiteID: 3, SiteCode: "S", PatientID: 9},
				Details: roundTrip(t, details), Observations: roundTrip(t, o.Observations), Reports: 1}},
		}
	}
	if diffs, _ := compareRecord(sent, record(), sender, "P"); len(diffs) != 0 {
		t.Fatalf("the record as sent differs: %v", diffs)
	}
	for _, c := range []struct {
		path   string
		change func(r *store.PatientRecord)
	}{
		{"Senders[sender].Demographics.Names[0].Given differs", func(r *store.PatientRecord) { r.Senders[0].Demographics.Names[0].Given += "x" }},
		{"Senders[sender].Demographics.Addresses[0].Zip differs", func(r *store.PatientRecord) { r.Senders[0].Demographics.Addresses[0].Zip = "" }},
		{"Senders[sender].Demographics.Races has 0 entries, 1 were sent", func(r *store.PatientRecord) { r.Senders[0].Demographics.Races = nil }},
		{"Senders[sender].NextOfKin[0].Relationship.Code differs", func(r *store.PatientRecord) { r.Senders[0].NextOfKin[0].Relationship.Code = "FTH" }},
		{"Senders[sender].Observations has 1 entries, 0 were sent", func(r *store.PatientRecord) {
			r.Senders[0].Observations = append(r.Senders[0].Observations, ingest.Observation{})
		}},
		{"MotherMaiden differs", func(r *store.PatientRecord) { r.MotherMaiden = "" }},
		{"BirthDate is missing", func(r *store.PatientRecord) { r.BirthDate = nil }},
		{"Vaccinations[order 1].Lot differs", func(r *store.PatientRecord) { r.Vaccinations[0].Lot += "1" }},
		{"Vaccinations[order 1].LotExpiration differs", func(r *store.PatientRecord) {
			d := r.Vaccinations[0].LotExpiration.AddDate(0, 0, 1)
			r.Vaccinations[0].LotExpiration = &d
		}},
		{"Vaccinations[order 1].Details.Lots[0] differs", func(r *store.PatientRecord) { r.Vaccinations[0].Details.Lots[0] += "1" }},
		{"Vaccinations[order 1].Details.AdministeredBy.Family differs", func(r *store.PatientRecord) { r.Vaccinations[0].Details.AdministeredBy.Family = "" }},
		{"Vaccinations[order 1].Observations[0].Value.Code differs", func(r *store.PatientRecord) { r.Vaccinations[0].Observations[0].Value.Code = "V00" }},
		{"Vaccinations[order 1].Observations has 3 entries, 4 were sent", func(r *store.PatientRecord) {
			r.Vaccinations[0].Observations = r.Vaccinations[0].Observations[:3]
		}},
		{"Vaccinations[order 1].Reports differs", func(r *store.PatientRecord) { r.Vaccinations[0].Reports = 2 }},
		{"Vaccinations[order 1]: missing", func(r *store.PatientRecord) { r.Vaccinations[0].OrderNumber = "other" }},
		{"Senders: the sender patient is missing", func(r *store.PatientRecord) { r.Senders[0].Identifier.Authority = "X" }},
	} {
		r := record()
		c.change(r)
		diffs, _ := compareRecord(sent, r, sender, "P")
		if len(diffs) != 1 || diffs[0] != c.path {
			t.Errorf("changed %s: differences %q", c.path, diffs)
		}
	}

	// A historical report the record shows merged into another report of the dose is found there.
	r := record()
	v := r.Vaccinations[0]
	r.Vaccinations[0] = store.Vaccination{ID: 6, Kind: "dose", CVX: v.CVX, AdministeredOn: v.AdministeredOn,
		Merged: []store.MergedReport{{VaccinationID: 5, CVX: v.CVX, Historical: v.Historical, InfoSource: v.InfoSource, Source: v.Source}}}
	if diffs, merged := compareRecord(sent, r, sender, "P"); len(diffs) != 0 || merged != 1 {
		t.Errorf("merged dose: differences %q, merged %d", diffs, merged)
	}
}

// roundTrip is v through JSON, as the record's API gives it.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
