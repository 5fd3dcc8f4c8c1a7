package store

import (
	"math/rand/v2"

	"github.com/jackc/pgx/v5/pgtype"
)

// ArrayCase is an array parameter for the round trip through PostgreSQL (arrays_test.go): Fast
// is sent by the fast path (arrays.go), Plain is the same elements as the Go slice pgx encodes.
type ArrayCase struct {
	Name        string
	OID         uint32
	Fast, Plain any
}

// ArrayCases returns the cases of TestArrayEncodingMatchesPgx that PostgreSQL accepts.
func ArrayCases(seed uint64) []ArrayCase {
	var out []ArrayCase
	for _, c := range arrayCases(rand.New(rand.NewPCG(seed, seed+1)), true) {
		out = append(out, ArrayCase{Name: c.name, OID: c.oid, Fast: c.fast, Plain: c.plain})
	}
	return out
}

// PlansFastArray reports whether m (a connection's type map) encodes v, sent as type oid, with
// the fast path.
func PlansFastArray(m *pgtype.Map, oid uint32, v any) bool {
	_, ok := m.PlanEncode(oid, pgtype.BinaryFormatCode, v).(binaryArrayPlan)
	return ok
}
