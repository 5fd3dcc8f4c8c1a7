// Package validate checks parsed VXU^V04 messages against a catalogue of rules and reports
// findings the ACK turns into ERR segments: where (ERR-2), the HL7 table 0357 code (ERR-3), the
// severity (ERR-4), the CDC table 0533 code (ERR-5) and a plain-language message telling the
// sender how to fix it (ERR-8).
//
// The rules come in families (see Rules and docs/validation.md, generated from them):
//
//   - structure and usage: the CDC Z22 profile of the Implementation Guide for Immunization
//     Messaging, release 1.5 — segment order and cardinality, R/RE/C/X usage of fields and
//     components, the conditional predicates and constraints (RXA-9 = 00 needs lot, manufacturer
//     and the funding eligibility OBX 64994-7; RXA-20 = RE needs RXA-18; ...);
//   - datatype and code: formats, lengths and value sets;
//   - vaccine: CVX, NDC and MVX against the CDC code sets of ingest/codes, code status against
//     the kind of report (administered or historical), CVX–MVX products, 998, VIS;
//   - date and quality: AIRA MQE-style plausibility of dates, ages, names, addresses, phones.
//
// The Z22 structure, field definitions and value sets are Go tables (z22_tables.go) that
// gen/z22tables derives from the NIST profile in ../shared/profiles; the project does not ship
// the NIST files. `go generate ./ingest/validate` rewrites the tables and docs/validation.md, and
// tests fail when either is stale.
//
// Each rule has a stable ID and a default severity that follows one principle: an error means
// the data cannot be stored as reported (the whole message when the patient or header is
// unusable, else the one vaccination), a warning means it is stored but must be fixed, an
// information changes nothing stored. Deployments and senders override severities by rule ID
// (Options); Ignore turns a rule off.
//
// A Validator is immutable and safe for concurrent use. Validate indexes each segment's fields
// once (fields.go) and walks the message once per pass over that index, with pooled scratch state
// and precomputed code tables: a message without findings costs no allocation. What the elements
// pass found clean it remembers (clean.go): values that repeat across messages, whole segments'
// combinations of them, and values a message repeats; only values without any problem are
// remembered, so that the findings are those of a full check.
//
// Finding texts may quote values from the message (codes, dates, a malformed telephone number or
// ZIP code; never a real name): they belong in the sender's ACK and the archive, not in logs.
package validate

//go:generate go run ./gen/z22tables -profiles ../../../shared/profiles -o z22_tables.go
//go:generate go run ./gen/docs -o ../../docs/validation.md
