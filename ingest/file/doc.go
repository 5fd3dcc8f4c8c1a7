// Package file is the file transport: HL7 files (FHS/BHS batches or plain concatenated messages)
// dropped into a site's inbox folder are picked up atomically, streamed message by message through
// the same intake pipeline as MLLP and SOAP, and answered with one ACK file per input file in the
// site's outbox; the input is then archived. Processing is restart-safe: a checkpoint file records
// how far a file's answers are durable, and a message processed again after a crash is a resend
// (same site and MSH-10), which the store answers with its original ACK without storing it twice.
//
// The same streaming core serves `vaxgate preload`, the one-time historical backload of a site
// (see Process and Preload).
package file
