package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/registry"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestBatchRowsRoundTrip: vaccinations encoded as batch_vaccination rows (the writer's wire
// format) read back in PostgreSQL column by column as they were: NULL and non-NULL dates and
// merge targets, empty and several report references, text PostgreSQL must not alter.
func TestBatchRowsRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	exp := time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC)
	in := []*registry.Vaccination{
		{ID: 1, PatientID: 2, RegID: 3, Env: "P", Org: 4, SiteID: 5, Filler: "ORD-1^EHR", Kind: "dose", CVX: "08",
			Date: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), InfoSource: "00", Amount: "0.5", Units: "mL", Lot: "L\\1&é",
			LotExpiration: &exp, MVX: "MSD", Route: "C28161", BodySite: "LA", Completion: "CP", Action: "A", DoseKey: "HepB",
			MergedInto: 9, Reports: []registry.Ref{{Message: 11, Group: 1}, {Message: 12, Group: 2}}},
		{ID: 6, PatientID: 2, RegID: 3, Env: "T", Org: 4, SiteID: 5, Kind: "refusal", NDC: "00006-4045-41",
			Date: time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), Historical: true, Deleted: true, DeletedNow: true},
	}
	c, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := store.RegisterRowTypes(ctx, c.Conn()); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Query(ctx, `SELECT u.id, u.patient, u.reg, u.env, u.org, u.site, u.filler, u.kind, u.cvx, u.ndc, u.date,
			u.historical, u.info, u.amount, u.units, u.lot, u.lot_exp, u.mvx, u.route, u.body_site, u.completion, u.action,
			u.refusal, u.dose_key, u.deleted, u.deleted_now, coalesce(u.merged, 0), u.reports, u.groups, u.merged IS NULL
		FROM unnest($1::batch_vaccination[]) AS u`, store.VaccinationRows(in))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*registry.Vaccination
	for rows.Next() {
		var x registry.Vaccination
		var msgs []int64
		var groups []int16
		var mergedNull bool
		if err := rows.Scan(&x.ID, &x.PatientID, &x.RegID, &x.Env, &x.Org, &x.SiteID, &x.Filler, &x.Kind, &x.CVX, &x.NDC,
			&x.Date, &x.Historical, &x.InfoSource, &x.Amount, &x.Units, &x.Lot, &x.LotExpiration, &x.MVX, &x.Route,
			&x.BodySite, &x.Completion, &x.Action, &x.RefusalReason, &x.DoseKey, &x.Deleted, &x.DeletedNow, &x.MergedInto,
			&msgs, &groups, &mergedNull); err != nil {
			t.Fatal(err)
		}
		if mergedNull != (x.MergedInto == 0) {
			t.Errorf("row %d: merged NULL %v with merged %d: 0 must be NULL and only 0", x.ID, mergedNull, x.MergedInto)
		}
		if len(msgs) != len(groups) {
			t.Fatalf("row %d: %d report messages and %d groups", x.ID, len(msgs), len(groups))
		}
		for i := range msgs {
			x.Reports = append(x.Reports, registry.Ref{Message: msgs[i], Group: groups[i]})
		}
		out = append(out, &x)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d rows read back, want %d", len(out), len(in))
	}
	for i := range in {
		if !reflect.DeepEqual(in[i], out[i]) {
			t.Errorf("row %d read back differs:\nsent %+v\nread %+v", i, *in[i], *out[i])
		}
	}
}
