// Package hl7 reads and writes the syntax of HL7 version 2 messages (ER7,
// the "pipe and hat" encoding): segments, fields, repetitions, components and
// subcomponents, escape sequences, character sets, MLLP framing and batch
// envelopes. It knows nothing about what the messages mean; packages above it
// give meaning to PID-5 or RXA-5.
//
// # Parsing
//
// Parse indexes a message without copying it: a Message is the original bytes
// plus where the segments are and a bitmap of the field separators, and a
// Message can be reused so that parsing a stream of messages allocates nothing
// once its tables have grown. Fields are located when read, from the bitmap;
// reading a position (Find, Field, Rep, Component, Sub, Raw) allocates
// nothing either, and a parsed Message may be read from several goroutines.
// Values are decoded only when asked for (String, AppendDecoded): escape
// sequences are resolved and the message character set (MSH-18) is converted
// to UTF-8 at that moment, so a malformed byte can only affect the value that
// contains it.
//
// Loops over the parts of a message use the iterators Segments, Fields, Reps,
// Components and Subs, which read each value once: calling Rep(i) for every i
// rescans the field each time, which is quadratic in its length. Locate maps a
// byte offset back to its position (segment, field, repetition, component).
//
// A sender that declares UTF-8, or nothing, and sends Latin-1 can be read as it
// meant with SetFallback: bytes that are not valid UTF-8 are then read in a
// single-byte character set instead of as U+FFFD.
//
// Positions are numbered as HL7 numbers them: fields, repetitions, components
// and subcomponents from 1; for MSH (and FHS, BHS) field 1 is the field
// separator and field 2 the encoding characters. A position that does not exist
// reads as an empty value; no method panics, whatever the input.
//
// # Writing
//
// Builder writes segments with values escaped for the chosen delimiters;
// WriteFrame and AppendFrame wrap a message in an MLLP frame, and FrameReader
// reads frames from a connection with a bounded buffer.
//
// # Batches
//
// SplitMessages and SplitBatch cut files and payloads that hold several
// messages, with or without FHS/BHS/BTS/FTS envelopes, into single messages.
package hl7
