package validate

import "github.com/vaxgate/vaxgate/ack"

// Rules about what a message may hold at all: limits that bound the work one message costs,
// characters the registry can store, and lengths its indexes can hold. They run before the
// writer, so that a message the database would refuse gets a definitive answer naming the field
// instead of an internal error on every retry.
var (
	ruleSegmentsLimit = defLimit(Rule{ID: "segments-limit", Family: FamilyStructure, Scope: ScopeMessage,
		Description: "The message has more segments than the registry accepts in one message (Options.MaxSegments, default 5000). Nothing else is checked.",
		Severity:    ack.Error, Code: ack.CodeSegmentSequence, App: ack.AppInvalidValue,
		Location: "the message", Reference: refSpec + " §5 (bounded work per message)",
		Message: "The message has {value} segments; the registry accepts at most {detail} in one message, so nothing was stored. Send one patient per message with only that patient's vaccinations."})
	ruleFindingsLimit = defLimit(Rule{ID: "findings-limit", Family: FamilyStructure, Scope: ScopeMessage,
		Description: "Validation found more problems than one message may have (Options.MaxFindings, default 500): the first ones are listed, then this one, and the message is rejected.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "the message", Reference: refSpec + " §5 (bounded work per message)",
		Message: "The message has {value} problems, more than the {detail} the registry reports for one message, so nothing was stored. Fix the ones listed and send it again."})
	ruleRepetitionsLimit = defLimit(Rule{ID: "field-repetitions-limit", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A field has more repetitions than the registry reads (Options.MaxRepetitions, default 100), whatever the profile allows.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "any field", Reference: refSpec + " §5 (bounded work per message)",
		Message: "{at} has {value} repetitions; the registry reads at most {detail}, so it was not stored. Send each value once."})

	ruleCharsetUndeclared = def(Rule{ID: "charset-undeclared", Family: FamilyDatatype, Scope: ScopeMessage,
		Description: "Bytes that are not valid UTF-8 in a message whose MSH-18 is empty or says UTF-8: read in the fallback character set (Options.Charset, default Windows-1252), once per message, naming the first field.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "MSH-18; any field", Reference: "HL7 2.5.1 MSH-18; " + refSpec + " 2.6",
		Message: "{at} holds characters that are not UTF-8 although MSH-18 is {detail}; they were read as {value}. Declare the character set in MSH-18 (e.g. 8859/1) or send UTF-8."})
	ruleCharsetUndecodable = defLimit(Rule{ID: "charset-undecodable", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "A field holds bytes that are characters neither in the declared character set nor in the fallback one, or any byte outside ASCII when MSH-18 names a character set the engine does not read: it cannot be read, and is not stored.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "any field", Reference: "HL7 2.5.1 MSH-18; " + refSpec + " 2.1",
		Message: "{at} holds the byte {value}, which is not a character in {detail}, so it could not be read and was not stored. Send the text in the character set MSH-18 declares."})
	ruleControlCharacter = defLimit(Rule{ID: "control-character", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "A field holds a control character HL7 text does not allow (NUL and the other C0 controls but tab, raw or as a \\X..\\ escape): it is not stored.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "any field", Reference: "HL7 2.5.1 ST/TX/FT (printable characters); " + refSpec + " §4",
		Message: "{at} holds the control character {value}, which HL7 text does not allow, so it was not stored. Remove it; a line break in text is \\.br\\."})
	ruleStorageLength = defLimit(Rule{ID: "length-storage-limit", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "An identifier or name the registry indexes (MSH-10, PID-3, PID-5, PID-6, PID-11.1, ORC-2, ORC-3) is longer than the registry stores: 199 bytes, the HL7 2.5.1 length of an identifier.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "MSH-10, PID-3.1/.4/.5, PID-5.1-3, PID-6.1, PID-11.1, ORC-2, ORC-3", Reference: "HL7 2.5.1 EI-1 (199); " + refSpec + " §4",
		Message: "{at} ({name}) is {value} bytes long; the registry keeps at most {detail}, so it was not stored. Send it within {detail} characters."})
)

// defLimit registers a rule that is always an error: a limit of what a message may hold (see
// Options), or a value the registry cannot store. Overriding its severity is refused: a NUL let
// through as a warning would reach the writer.
func defLimit(r Rule) *Rule {
	p := def(r)
	p.fixed = true
	return p
}
