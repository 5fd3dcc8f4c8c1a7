// Package codes holds the CDC code sets the engine needs at run time to validate vaccinations:
// CVX vaccine codes, MVX manufacturer codes, CDC product names (tradename ↔ CVX ↔ MVX), vaccine
// groups, NDC codes (unit of use and unit of sale, NDC → CVX and MVX), CPT → CVX, and the Vaccine
// Information Statements (VIS) with their CVX mapping.
//
// A Set is an immutable, concurrency-safe table of those facts with O(1) lookups. Default returns
// the snapshot embedded in the binary (snapshot.dat), so validation needs no database and no
// network. The snapshot is in the project's own compact, versioned, line-oriented format (see
// MarshalBinary); it is derived from the CDC downloads in ../shared/codes by `go generate`, never
// a copy of them, and a test regenerates it to catch a stale snapshot.
//
// Registries must follow the CDC as it publishes new codes, so `vaxgate codes import` refreshes a
// Set from newer CDC downloads at run time: Import and ImportReaders recognise each supported CDC
// file by its content (pipe-delimited text with or without a header line, or XML; UTF-8,
// Latin-1/Windows-1252 or UTF-16; with or without BOM; LF or CRLF) and overlay its records on a
// base Set. Overlaying keeps what the new files do not mention and never lets an older record
// replace a newer one, so importing an old download cannot roll the tables back.
//
// Codes are normalised on the way in and on lookup: CVX codes are digits with leading zeros
// removed and re-padded to two digits, the way the CDC writes them ("8", "008" and " 08 " are all
// "08", hepatitis B); MVX codes are upper case; NDCs are the 11-digit 5-4-2 form with hyphens
// ("49281-0425-50"), whatever the sender's layout (4-4-2, 5-3-2, 5-4-1, with or without hyphens).
package codes

//go:generate go run ./gen -src ../../../shared/codes -out snapshot.dat
