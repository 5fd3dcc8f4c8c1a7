package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// The archive rows are written with COPY rather than an INSERT over an array of records.
//
// A batch's archive rows carry its raw messages and ACKs: about 2.3 kB a row, 300 kB for a batch
// of 128. Sent as a statement's parameter, they were copied several times on the way: pgx encodes
// a statement into a write buffer that starts at 1 kB and doubles as it grows (and is dropped
// after each round trip), and PostgreSQL copied the array, then each record, then each column
// before forming the row. COPY's binary stream is sent in chunks from a buffer the writer
// reuses (rowBuffers), and PostgreSQL reads each column straight from it and writes the rows a page at a time.
// It costs the batch a round trip of its own (COPY cannot be pipelined with the statements around
// it): the archive rows go out after the registry is applied, the registry's rows and the commit
// after them. A small batch (fewer than copyMinRows archive rows: one message in flight per
// connection, say) would pay more for that round trip, and COPY's statement, than it saves: its
// archive rows are inserted as an array of batch_message rows, an INSERT that goes out with the
// registry's rows and the commit (insertMessages).

// copyMinRows is the fewest archive rows a batch copies; fewer are inserted.
const copyMinRows = 32

// writeMessages writes a batch's archive rows: copied (copyMessages), or, for fewer than
// copyMinRows, inserted with the statements queued after it.
func writeMessages(ctx context.Context, tx *pipeTx, rows []archiveRow) error {
	if len(rows) >= copyMinRows {
		return copyMessages(ctx, tx, rows)
	}
	if len(rows) == 0 {
		return nil
	}
	var a rowArray
	addMessages(&a, rows)
	if _, err := tx.Exec(ctx, insertMessages, &a); err != nil {
		return fmt.Errorf("store: archive messages: %w", err)
	}
	return nil
}

// messageColumns are the archive row's columns as the writer sends them (addMessages), for both
// insertMessages and copyMessagesSQL.
const messageColumns = `id, env, site_id, credential_id, transport, control_id, sending_facility, message_type,
		received_at, raw, ack, ack_code, findings, resend_key, content_digest, more_findings, more_findings_count,
		charset, readable, has_errors, has_warnings, finding_keys, administered, historical, refusals, immunity,
		with_lot, with_mvx, with_funding, with_vis, has_race, has_ethnicity, has_address, lag_1, lag_7, lag_30,
		lag_late, lag_days`

// insertMessages inserts archive rows sent as an array of batch_message rows (addMessages).
const insertMessages = `INSERT INTO messages (` + messageColumns + `)
	SELECT u.id, u.env, u.site, u.cred, u.transport, u.control, u.facility, u.mtype, u.received, u.raw, u.ack, u.code,
		u.findings::json, u.resend_key, u.digest, u.more, u.more_count, u.charset, u.readable, u.errs, u.warns, u.keys,
		u.adm, u.hist, u.ref, u.imm, u.lot, u.mvx, u.fund, u.vis, u.race, u.eth, u.addr, u.lag1, u.lag7, u.lag30, u.late,
		u.lag_days
	FROM unnest($1::batch_message[]) AS u`

// copyHeader starts COPY's binary format: its signature, no flags, no header extension.
var copyHeader = []byte("PGCOPY\n\377\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyMessagesSQL copies archive rows in COPY's binary format (addMessages).
const copyMessagesSQL = `COPY messages (` + messageColumns + `) FROM STDIN (FORMAT binary)`

// copyMessages writes rows into messages with COPY, on tx's connection, after the statements
// queued on tx (which it sends first, if any).
func copyMessages(ctx context.Context, tx *pipeTx, rows []archiveRow) error {
	if len(rows) == 0 {
		return nil
	}
	if len(tx.queued) > 0 {
		if err := tx.Flush(ctx); err != nil {
			return err
		}
	}
	a := rowArray{copyFormat: true}
	a.takeBuffer()
	defer a.release()
	a.buf = grow(append(a.buf, copyHeader...), messagesSize(rows)+2)
	addMessages(&a, rows)
	if a.err != nil {
		return a.err
	}
	a.buf = binary.BigEndian.AppendUint16(a.buf, 0xffff) // the trailer: a tuple of -1 columns
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(a.buf), copyMessagesSQL)
	if err != nil {
		return fmt.Errorf("store: archive messages: %w", err)
	}
	if n := tag.RowsAffected(); n != int64(len(rows)) {
		return fmt.Errorf("store: archive messages: %d rows copied of %d", n, len(rows))
	}
	return nil
}
