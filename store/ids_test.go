package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestIDsDrawnPastTheEstimate: a batch draws ahead the ids it is expected to use; one that needs
// more (a report changing a stored patient's sharing status, an estimate short for any reason)
// draws them as it goes, never failing for want of an id, and every id it takes is new.
func TestIDsDrawnPastTheEstimate(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	for _, tc := range []struct {
		name   string
		counts [4]int
		table  string
		take   int
	}{
		{"none drawn ahead", [4]int{}, "sharing_changes", 3},
		{"fewer than needed", [4]int{2, 2, 1, 5}, "vaccinations", 40},
		{"enough", [4]int{0, 7, 0, 0}, "patients", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := store.TakeIDs(ctx, db, tc.counts, tc.table, tc.take)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != tc.take {
				t.Fatalf("%d ids, want %d", len(ids), tc.take)
			}
			if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
				t.Errorf("ids %v: want distinct and increasing, in the order taken", ids)
			}
		})
	}
}
