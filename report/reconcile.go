package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Claim is what a site says it sent in a period: a count, or the control IDs (MSH-10) of its
// messages, read from a file whose junk lines are reported and skipped.
type Claim struct {
	Count      int64    // the count claimed (with ControlIDs: the number of distinct IDs)
	ControlIDs []string // nil for a count-only claim
	Junk       []JunkLine
	Duplicates int // lines repeating an ID already listed

	index map[string]int // position of each ID in ControlIDs (made by ParseControlIDs, ClaimOf)
}

// JunkLine is a line of a control-ID file that is not a control ID.
type JunkLine struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// Limits of a control-ID file.
const (
	maxControlIDLen   = 199 // MSH-10 is ST, 199 characters
	maxClaimIDs       = 5_000_000
	maxJunkReported   = 1000
	maxClaimLineBytes = 64 << 10
)

// ErrClaimTooLarge is the answer to a control-ID file of more than 5,000,000 IDs.
var ErrClaimTooLarge = errors.New("report: the control-ID file lists more than 5,000,000 IDs")

// ParseControlIDs reads a file of control IDs, one per line (blank lines and lines starting with
// '#' are skipped; a header line "MSH-10" or "control_id" too). A line that cannot be an MSH-10 —
// longer than 199 characters, with spaces inside, HL7 delimiters, control characters or invalid
// UTF-8 — is reported as junk, with its line number, and skipped.
func ParseControlIDs(r io.Reader) (*Claim, error) {
	b := newClaimBuilder()
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if err != nil && line == nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("report: read control IDs: %w", err)
		}
		if tooLong {
			b.junk(n, fmt.Sprintf("longer than %d bytes", maxClaimLineBytes))
		} else if err := b.add(n, string(bytes.TrimSpace(line))); err != nil {
			return nil, err
		}
		if err != nil {
			break
		}
	}
	return b.claim(), nil
}

// ClaimOf is ParseControlIDs for a list of IDs (element i is line i+1).
func ClaimOf(ids []string) (*Claim, error) {
	b := newClaimBuilder()
	for i, id := range ids {
		if strings.ContainsAny(id, "\r\n") {
			b.junk(i+1, "contains a line break")
			continue
		}
		if err := b.add(i+1, strings.TrimSpace(id)); err != nil {
			return nil, err
		}
	}
	return b.claim(), nil
}

type claimBuilder struct {
	c     *Claim
	nJunk int
}

func newClaimBuilder() *claimBuilder {
	return &claimBuilder{c: &Claim{ControlIDs: []string{}, index: map[string]int{}}}
}

func (b *claimBuilder) junk(line int, reason string) {
	b.nJunk++
	if len(b.c.Junk) < maxJunkReported {
		b.c.Junk = append(b.c.Junk, JunkLine{Line: line, Reason: reason})
	}
}

func (b *claimBuilder) add(n int, id string) error {
	switch {
	case id == "" || id[0] == '#':
		return nil
	case n == 1 && (strings.EqualFold(id, "MSH-10") || strings.EqualFold(id, "control_id")):
		return nil
	}
	if reason := junkReason(id); reason != "" {
		b.junk(n, reason)
		return nil
	}
	if _, dup := b.c.index[id]; dup {
		b.c.Duplicates++
		return nil
	}
	if len(b.c.ControlIDs) == maxClaimIDs {
		return ErrClaimTooLarge
	}
	b.c.index[id] = len(b.c.ControlIDs)
	b.c.ControlIDs = append(b.c.ControlIDs, id)
	return nil
}

func (b *claimBuilder) claim() *Claim {
	if b.nJunk > len(b.c.Junk) {
		b.c.Junk = append(b.c.Junk, JunkLine{Line: 0, Reason: fmt.Sprintf("and %d more junk lines", b.nJunk-len(b.c.Junk))})
	}
	b.c.Count = int64(len(b.c.ControlIDs))
	return b.c
}

// readLine reads one line (without its end) of at most maxClaimLineBytes; a longer one is
// consumed and reported as tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		part, isPrefix, err := br.ReadLine()
		if err != nil {
			if line != nil || tooLong {
				return line, tooLong, io.EOF
			}
			return nil, false, err
		}
		if !tooLong {
			line = append(line, part...)
			if len(line) > maxClaimLineBytes {
				line, tooLong = []byte{}, true
			}
		}
		if !isPrefix {
			if line == nil {
				line = []byte{}
			}
			return line, tooLong, nil
		}
	}
}

// junkReason says why a line cannot be a control ID, or "".
func junkReason(id string) string {
	if !utf8.ValidString(id) {
		return "not valid UTF-8"
	}
	if len(id) > maxControlIDLen && utf8.RuneCountInString(id) > maxControlIDLen {
		return fmt.Sprintf("longer than %d characters (MSH-10 is at most %d)", maxControlIDLen, maxControlIDLen)
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c == '|' || c == '^' || c == '~' || c == '\\' || c == '&':
			return "contains an HL7 delimiter (| ^ ~ \\ &): not an MSH-10 value"
		case c < ' ' || c == 0x7f:
			return "contains control characters"
		case c == ' ' || c == ',' || c == ';':
			return "contains spaces or separators: one control ID per line"
		}
	}
	return ""
}

// Reconciliation compares what a site says it sent in a period with what the registry received.
type Reconciliation struct {
	Site        Site      `json:"site"`
	Env         string    `json:"env"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	GeneratedAt time.Time `json:"generated_at"`
	ClaimKind   string    `json:"claim"` // "count" or "control-ids"
	Claimed     int64     `json:"claimed"`

	// Received counts distinct control IDs received in the period; Accepted those of them with an
	// accepted message (AA or AE), Rejected those whose every message was rejected (AR).
	Received int64 `json:"received"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// With a control-ID file: claimed IDs received and accepted, received and rejected, not
	// received at all (Missing), and received IDs the file does not list (Unexpected). With a
	// count: Missing is how many fewer were received than claimed, Unexpected how many more.
	ClaimedAccepted int64    `json:"claimed_accepted"`
	ClaimedRejected int64    `json:"claimed_rejected"`
	Missing         int64    `json:"missing"`
	Unexpected      int64    `json:"unexpected"`
	MissingIDs      []string `json:"missing_ids,omitempty"`
	UnexpectedIDs   []string `json:"unexpected_ids,omitempty"`
	RejectedIDs     []string `json:"rejected_ids,omitempty"`
	// Junk lines of the file, reported and skipped; DuplicateLines repeated an ID.
	Junk           []JunkLine `json:"junk,omitempty"`
	DuplicateLines int        `json:"duplicate_lines,omitempty"`
}

// Reconcile compares claim with the site's messages of the period (their control IDs and ACK
// codes; it also summarizes those not summarized yet, for the quality reports).
func (s *Service) Reconcile(ctx context.Context, site *Site, p Period, claim *Claim) (*Reconciliation, error) {
	p.SiteID = site.ID
	if err := checkPeriod(p); err != nil {
		return nil, err
	}
	if _, err := s.Summarize(ctx, p); err != nil {
		return nil, err
	}
	r := &Reconciliation{Site: *site, Env: p.Env, From: p.From.UTC(), To: p.To.UTC(), GeneratedAt: s.o.Now().UTC(),
		ClaimKind: "count", Claimed: claim.Count, Junk: claim.Junk, DuplicateLines: claim.Duplicates}
	if claim.ControlIDs == nil {
		received, accepted, err := s.st.ControlIDCounts(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("report: reconcile site %s: %w", site.Code, err)
		}
		r.Received, r.Accepted, r.Rejected = received, accepted, received-accepted
		r.Missing = max(claim.Count-r.Received, 0)
		r.Unexpected = max(r.Received-claim.Count, 0)
		return r, nil
	}
	r.ClaimKind = "control-ids"
	index := claim.index
	if index == nil {
		index = make(map[string]int, len(claim.ControlIDs))
		for i, id := range claim.ControlIDs {
			index[id] = i
		}
	}
	received := make([]bool, len(claim.ControlIDs)) // by position in claim.ControlIDs
	err := s.st.ControlIDs(ctx, p, func(c ControlIDStatus) error {
		r.Received++
		if c.Accepted {
			r.Accepted++
		} else {
			r.Rejected++
		}
		i, listed := index[c.ControlID]
		if !listed {
			r.Unexpected++
			r.UnexpectedIDs = append(r.UnexpectedIDs, c.ControlID)
			return nil
		}
		received[i] = true
		if c.Accepted {
			r.ClaimedAccepted++
		} else {
			r.ClaimedRejected++
			r.RejectedIDs = append(r.RejectedIDs, c.ControlID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report: reconcile site %s: %w", site.Code, err)
	}
	for i, id := range claim.ControlIDs {
		if !received[i] {
			r.Missing++
			r.MissingIDs = append(r.MissingIDs, id)
		}
	}
	slices.Sort(r.UnexpectedIDs)
	slices.Sort(r.RejectedIDs)
	return r, nil
}

// WriteCSV writes one row per control ID that needs attention (status missing, unexpected or
// rejected) and one per junk line, after a header; the totals are in the first rows.
func (r *Reconciliation) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"status", "control_id", "detail"})
	for _, t := range []struct {
		k string
		n int64
	}{{"claimed", r.Claimed}, {"received", r.Received}, {"accepted", r.Accepted}, {"rejected", r.Rejected},
		{"missing", r.Missing}, {"unexpected", r.Unexpected}} {
		_ = cw.Write([]string{"total", t.k, strconv.FormatInt(t.n, 10)})
	}
	for _, id := range r.MissingIDs {
		_ = cw.Write([]string{"missing", id, "claimed, not received"})
	}
	for _, id := range r.RejectedIDs {
		_ = cw.Write([]string{"rejected", id, "received, every copy answered AR"})
	}
	for _, id := range r.UnexpectedIDs {
		_ = cw.Write([]string{"unexpected", id, "received, not in the file"})
	}
	for _, j := range r.Junk {
		_ = cw.Write([]string{"junk", "", fmt.Sprintf("line %d: %s", j.Line, j.Reason)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: write CSV: %w", err)
	}
	return nil
}
