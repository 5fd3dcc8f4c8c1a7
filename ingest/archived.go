package ingest

import (
	"fmt"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/hl7"
)

// The archive is the copy of record of everything a sender reported (store keeps, as columns,
// only what the registry queries, matches, indexes or merges on). DecodeArchived reads an
// archived message again, the way the pipeline read it when it was accepted; FallbackUsed says
// what the archive must keep beside the raw bytes so that it can.

// DecodeArchived decodes an archived message again: raw as received, fallback the name of the
// fallback character set that decoded part of it when it was accepted (Record.Charset; "" when
// none did), res the resolver of RXA-5 (nil: only a CVX triplet gives the CVX; the caller then
// takes the CVX it stored). The orders keep their group numbers (Order.Group) whatever
// validation rejected: a stored vaccination names its group in the message.
func DecodeArchived(raw []byte, fallback string, res VaccineResolver) (*VXU, error) {
	m, err := hl7.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("ingest: decode archived message: %w", err)
	}
	if fallback != "" {
		fb, err := hl7.DecoderFor(fallback)
		if err != nil {
			return nil, fmt.Errorf("ingest: decode archived message: fallback character set: %w", err)
		}
		m.SetFallback(fb)
	}
	return DecodeWith(m, res), nil
}

// FallbackUsed returns the name of the fallback character set m's values were read with, when
// the fallback decoded something of raw (m's bytes): m's character set is UTF-8, m has a
// fallback (SetFallback) and raw is not valid UTF-8. It returns "" otherwise: raw reads the same
// without it.
func FallbackUsed(m *hl7.Message, raw []byte) string {
	fb := m.Decoder().Fallback()
	if fb == nil || utf8.Valid(raw) {
		return ""
	}
	return fb.Name()
}
