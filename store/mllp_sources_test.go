package store_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/vaxgate/vaxgate/store/storetest"
)

// The ranges the MLLP server reserves slots for are those of the active, unrevoked MLLP
// credentials, once each.
func TestMLLPSourceRanges(t *testing.T) {
	db := storetest.New(t)
	senderFixture(t, db)
	got, err := db.MLLPSourceRanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	slices.Sort(s)
	want := []string{"10.0.0.0/8", "10.1.2.0/24", "192.0.2.0/24", "2001:db8::/32", "203.0.113.0/24"}
	if !slices.Equal(s, want) {
		t.Errorf("ranges %v, want %v", s, want)
	}
	if !slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr("10.200.1.1")) }) {
		t.Error("10.200.1.1 is not in any range")
	}
}
