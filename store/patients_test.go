package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// The consolidated record's content is tested end to end through MLLP (ingest/registry_test.go);
// here, what a caller gets for patients that do not exist.
func TestPatientRecordNotFound(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	if _, err := db.PatientRecord(ctx, 42); !errors.Is(err, store.ErrPatientNotFound) {
		t.Errorf("PatientRecord of a missing patient: %v, want ErrPatientNotFound", err)
	}
	if _, err := db.RegistryPatientID(ctx, "P", 1, ingest.Identifier{Value: "X"}); !errors.Is(err, store.ErrPatientNotFound) {
		t.Errorf("RegistryPatientID of a missing patient: %v, want ErrPatientNotFound", err)
	}
	reviews, err := db.OpenReviews(ctx, "P")
	if err != nil || len(reviews) != 0 {
		t.Errorf("OpenReviews on an empty registry: %v, %v", reviews, err)
	}
}
