package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/registry"
)

// The registry's meaning (identity, linking, dose identity and merging, sharing policy) is in
// package registry, pure Go over the batch's view; the store fills the view (prefetch, view.go),
// takes the locks that serialise the writers of one person and one control ID (here), and writes
// what the registry decided (writeRegistry, persist.go).

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
	// FNV-1a of "site|env|control", fed piece by piece (no string built, no fmt per record): the
	// same key as engines that formatted the string, so that they and this one serialise the same
	// control ID while both run on one database (an upgrade).
	h := newPieceHash()
	h.addInt(rec.Sender.SiteID)
	h.add(rec.Env)
	h.addLast(rec.ControlID)
	return int32(h), true
}

// patientLockClass is the first key of the advisory locks that serialise the batches writing one
// sender patient (patientLockKey).
const patientLockClass = 0x76617870 // "vaxp"

// patientLockKey is the advisory lock key of a record's sender patient (its identifier: environment,
// organization, value, authority, type). Only a batch with a record of that patient writes its row
// (registry: writePatient), so batches holding the lock are the row's only writers, one at a time,
// each seeing what the one before it committed: the batch's look-up reads the row after the lock is
// granted, and needs no row lock on it. Records of one patient go to one shard (Writer.shardOf);
// the lock matters when several engines share the database.
func patientLockKey(rec *ingest.Record) (key int32, ok bool) {
	k, ok := registry.KeyOf(rec)
	if !ok {
		return 0, false
	}
	h := newPieceHash()
	h.add(k.Env)
	h.addInt(k.Org)
	h.add(k.Value)
	h.add(k.Authority)
	h.add(k.IDTyp)
	return int32(h), true
}

// pieceHash is FNV-1a (32 bits) of strings fed one at a time, each followed by '|', without
// building a string of them (these hashes are taken for every record of every batch).
type pieceHash uint32

func newPieceHash() pieceHash { return 2166136261 }

func (h *pieceHash) add(s string) {
	h.addLast(s)
	*h = pieceHash((uint32(*h) ^ '|') * 16777619)
}

// addLast feeds s without the '|' after it.
func (h *pieceHash) addLast(s string) {
	const prime = 16777619
	x := uint32(*h)
	for i := 0; i < len(s); i++ {
		x = (x ^ uint32(s[i])) * prime
	}
	*h = pieceHash(x)
}

func (h *pieceHash) addInt(n int64) {
	var b [20]byte
	h.add(string(strconv.AppendInt(b[:0], n, 10)))
}

// lockLinkKeys sets the plan settings of a writer's transaction (writerPlanSettings, planMode its
// plan_cache_mode) and takes, in the same statement, its first, and in ascending order, the
// advisory locks of the linking blocks of recs, of their control IDs (resendLockKey) and of their
// sender patients (patientLockKey). Taking
// them all up front and in order means a transaction never waits for one while holding row locks,
// so these locks cannot take part in a deadlock between concurrent batches; records of the same
// block (or with the same control ID) in different shards are serialised.
func lockLinkKeys(ctx context.Context, tx pgx.Tx, recs []*ingest.Record, planMode string) error {
	type lock struct{ class, key int32 }
	var locks []lock
	for _, rec := range recs {
		if k, ok := registry.LinkKey(rec); ok {
			locks = append(locks, lock{registry.LinkLockClass, k})
		}
		if k, ok := resendLockKey(rec); ok {
			locks = append(locks, lock{resendLockClass, k})
		}
		if k, ok := patientLockKey(rec); ok {
			locks = append(locks, lock{patientLockClass, k})
		}
	}
	slices.SortFunc(locks, func(a, b lock) int {
		if a.class != b.class {
			return cmp.Compare(a.class, b.class)
		}
		return cmp.Compare(a.key, b.key)
	})
	locks = slices.Compact(locks)
	var rows rowArray
	for _, l := range locks {
		rows.begin(2)
		rows.int4(l.class)
		rows.int4(l.key)
		rows.end()
	}
	// WITH ORDINALITY ... ORDER BY keeps the array's (ascending) order of acquisition.
	if _, err := tx.Exec(ctx, `SELECT `+writerPlanSettings+`, (SELECT count(pg_advisory_xact_lock(s.class, s.key))
		FROM (SELECT u.class, u.key FROM unnest($1::batch_lock[]) WITH ORDINALITY AS u(class, key, i) ORDER BY u.i) s)`,
		&rows, planMode); err != nil {
		return fmt.Errorf("store: plan settings, lock linking blocks and control IDs: %w", err)
	}
	return nil
}
