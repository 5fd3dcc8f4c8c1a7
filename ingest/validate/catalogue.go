package validate

import "github.com/vaxgate/vaxgate/ack"

// The catalogue. Severities follow one principle, so that registries can predict them:
//
//   - Error: the data cannot be stored as reported. Scope message (patient identity, message
//     header, no vaccination at all) rejects the message; scope vaccination rejects that dose.
//   - Warning: the data is stored, but it breaks the guide or is doubtful, and the sender must fix
//     it (the ACK is AE).
//   - Information: a deviation from the guide that changes nothing the registry stores.
//
// Where the Z22 profile and this principle differ (the profile makes every R element an error),
// the Reference names the profile requirement and the severity is the registry's; deployments
// raise or lower any rule in configuration.

const (
	refZ22     = "Z22 profile"
	refIG      = "CDC IG 1.5"
	refMQE     = "AIRA MQE"
	refSpec    = "vaxgate SPEC"
	refProfile = "Z22 profile, usage and cardinality"
)

// Structure: the segments of the message.
var (
	ruleSegmentUnknown = def(Rule{ID: "segment-unknown", Family: FamilyStructure, Scope: ScopeSegment,
		Description: "A segment that is not part of the VXU^V04 Z22 message structure (Z segments, EVN, ...).",
		Severity:    ack.Information, Code: ack.CodeSegmentSequence, App: ack.AppDataWasIgnored,
		Location: "any segment", Reference: refZ22,
		Message: "Segment {value} is not part of a VXU^V04 Z22 message and was ignored. Remove it, or agree its use with the registry."})
	ruleSegmentOrder = def(Rule{ID: "segment-order", Family: FamilyStructure, Scope: ScopeSegment,
		Description: "A Z22 segment in a place the structure does not allow.",
		Severity:    ack.Warning, Code: ack.CodeSegmentSequence,
		Location: "any segment", Reference: refZ22,
		Message: "Segment {value} is out of order{detail}. Send MSH, PID, PD1, NK1, then for each vaccination ORC, RXA, RXR and its OBX segments."})
	ruleSegmentRepeat = def(Rule{ID: "segment-repeat", Family: FamilyStructure, Scope: ScopeSegment,
		Description: "A segment repeated more often than the Z22 structure allows (e.g. two RXR in one order).",
		Severity:    ack.Warning, Code: ack.CodeSegmentSequence,
		Location: "PD1, PV1, RXR, NTE, ...", Reference: refZ22,
		Message: "Segment {value} is repeated{detail}; Z22 allows it at most once there. Send it once."})
	rulePIDMissing = def(Rule{ID: "pid-segment-missing", Family: FamilyStructure, Scope: ScopeMessage,
		Description: "The message has no PID segment.",
		Severity:    ack.Error, Code: ack.CodeSegmentSequence, App: ack.AppRequiredDataMissing,
		Location: "PID", Reference: refZ22,
		Message: "The message has no PID segment, so the patient is unknown. Send PID after MSH."})
	rulePIDRepeat = def(Rule{ID: "pid-segment-repeat", Family: FamilyStructure, Scope: ScopeMessage,
		Description: "The message has more than one PID segment.",
		Severity:    ack.Error, Code: ack.CodeSegmentSequence, App: ack.AppIllogicalValue,
		Location: "PID", Reference: refZ22,
		Message: "The message has more than one PID segment. Send one patient per VXU message."})
	ruleNoOrder = def(Rule{ID: "order-missing", Family: FamilyStructure, Scope: ScopeMessage,
		Description: "The message reports no vaccination (no RXA).",
		Severity:    ack.Error, Code: ack.CodeSegmentSequence, App: ack.AppRequiredDataMissing,
		Location: "ORC/RXA", Reference: refSpec,
		Message: "The message reports no vaccination: it has no RXA segment. Send each vaccination, refusal or history as ORC, RXA, RXR and OBX segments."})
	ruleORCMissing = def(Rule{ID: "orc-segment-missing", Family: FamilyStructure, Scope: ScopeVaccination,
		Description: "An RXA without its ORC segment.",
		Severity:    ack.Warning, Code: ack.CodeSegmentSequence, App: ack.AppRequiredDataMissing,
		Location: "ORC", Reference: refZ22,
		Message: "RXA has no ORC before it. Send ORC before each RXA; ORC-3 identifies the vaccination for later updates and deletions."})
	ruleRXAMissing = def(Rule{ID: "rxa-segment-missing", Family: FamilyStructure, Scope: ScopeSegment,
		Description: "An ORC that is not followed by its RXA.",
		Severity:    ack.Warning, Code: ack.CodeSegmentSequence, App: ack.AppDataWasIgnored,
		Location: "RXA", Reference: refZ22,
		Message: "ORC is not followed by an RXA, so it reports nothing and was ignored. Send RXA after each ORC."})
	ruleRXRMissing = def(Rule{ID: "rxr-segment-missing", Family: FamilyStructure, Scope: ScopeVaccination,
		Description: "An administered dose without RXR (route and body site).",
		Severity:    ack.Warning, Code: ack.CodeSegmentSequence, App: ack.AppRequiredDataMissing,
		Location: "RXR", Reference: refIG + " (RXR is RE)",
		Message: "The administered dose has no RXR segment. Send RXR after RXA with the route (RXR-1) and body site (RXR-2)."})
)

// Usage: required, conditional and unsupported fields and components.
var (
	ruleRequiredField = def(Rule{ID: "required-field-missing", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A field whose usage is R is empty (fields with a rule of their own are listed separately).",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "any R field", Reference: refProfile,
		Message: "{at} ({name}) is required and empty. Send it."})
	ruleRequiredComponent = def(Rule{ID: "required-component-missing", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A component or subcomponent whose usage is R is empty in a field that is sent.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "any R component", Reference: refProfile,
		Message: "{at} ({name}) is required when the field is sent, and it is empty. Send it."})
	ruleConditionalComponent = def(Rule{ID: "conditional-component-missing", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A component the data type's condition requires is empty (e.g. XCN-13 identifier type when XCN-1 has an ID).",
		Severity:    ack.Information, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "CE, CWE, CX, EI, HD, XCN, XON, XTN components", Reference: "Z22 constraints, data type predicates",
		Message: "{at} ({name}) is empty, but it is required {detail}. Send it."})
	ruleNameTypeMissing = def(Rule{ID: "name-type-missing", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "XPN-7 (name type) is empty in PID-6 (mother's maiden name) or NK1-2 (next of kin name), where its meaning is implied.",
		Severity:    ack.Information, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-6.7, NK1-2.7", Reference: refProfile + " (XPN_M, XPN_IZ)",
		Message: "{at} (name type) is empty; the name was read as {detail}. Send it, e.g. ^^^^^^{value}."})
	ruleNotSupported = def(Rule{ID: "element-not-supported", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A field or component the profile does not support (usage X) is valued.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppDataWasIgnored,
		Location: "any X element", Reference: refProfile,
		Message: "{at} ({name}) is not used in Z22 messages and was ignored. Leave it empty."})
	ruleConditionalNotAllowed = def(Rule{ID: "conditional-field-not-allowed", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A conditional field is valued although its condition is false (PD1-13/17/18, PID-25).",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppDataWasIgnored,
		Location: "PD1-13, PD1-17, PD1-18, PID-25", Reference: "Z22 constraints, segment predicates",
		Message: "{at} ({name}) is valued but {detail}, so it was ignored."})
	ruleFieldRepeat = def(Rule{ID: "field-repeat", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "A field has more repetitions than the profile allows.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppDataWasIgnored,
		Location: "any field", Reference: refProfile,
		Message: "{at} ({name}) is repeated {value} times; Z22 allows {detail}. Send no more repetitions than that."})

	ruleMSH7Missing = def(Rule{ID: "msh-7-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-7 (date/time of message) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "MSH-7", Reference: refZ22,
		Message: "MSH-7 (Date/Time of Message) is empty. The message was processed with the time it was received. Send the time the message was created, e.g. 20240131143000-0500."})
	ruleMSH10Missing = def(Rule{ID: "msh-10-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-10 (message control ID) is empty.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "MSH-10", Reference: refZ22,
		Message: "MSH-10 (Message Control ID) is empty. Send an ID unique to each message; the ACK echoes it and resends are recognised by it."})
	ruleMSH15Missing = def(Rule{ID: "msh-15-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-15 (accept acknowledgment type) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "MSH-15", Reference: refZ22,
		Message: "MSH-15 (Accept Acknowledgment Type) is empty; the registry answers every message anyway. Send ER."})
	ruleMSH16Missing = def(Rule{ID: "msh-16-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-16 (application acknowledgment type) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "MSH-16", Reference: refZ22,
		Message: "MSH-16 (Application Acknowledgment Type) is empty; the registry answers every message anyway. Send AL."})
	ruleMSH21Missing = def(Rule{ID: "msh-21-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-21 (message profile identifier) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "MSH-21", Reference: refSpec + " 2.3; Z22 constraint IZ-43",
		Message: "MSH-21 (Message Profile Identifier) is empty. Send Z22^CDCPHINVS."})
	rulePID3Missing = def(Rule{ID: "pid-3-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "PID-3 (patient identifier list) has no identifier in its first repetition.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-3", Reference: refZ22,
		Message: "{at} (patient identifier) is empty, so the patient cannot be identified. Send the patient's medical record number as ID^^^AUTHORITY^MR."})
	rulePID5Missing = def(Rule{ID: "pid-5-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "PID-5 (patient name) or its family name is empty.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-5, PID-5.1", Reference: refZ22,
		Message: "{at} (patient family name) is empty. Send the legal name as Family^Given^Middle^^^^L."})
	rulePID5GivenMissing = def(Rule{ID: "pid-5-given-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "PID-5.2 (patient given name) is empty in the first name.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-5.2", Reference: refZ22,
		Message: "{at} (patient given name) is empty. Send the legal name as Family^Given^Middle^^^^L."})
	rulePID7Missing = def(Rule{ID: "pid-7-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "PID-7 (birth date) is empty.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-7", Reference: refZ22,
		Message: "PID-7 (patient birth date) is empty. Send it as YYYYMMDD."})
	rulePID8Missing = def(Rule{ID: "pid-8-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "PID-8 (administrative sex) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-8", Reference: refZ22,
		Message: "PID-8 (patient sex) is empty. Send F, M or U (unknown)."})
	rulePID29NoIndicator = def(Rule{ID: "pid-29-indicator", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "PID-29 (death date) is valued but PID-30 (death indicator) is not Y.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "PID-29, PID-30", Reference: "Z22 predicate on PID-29",
		Message: "PID-29 gives a death date but PID-30 (Patient Death Indicator) is not Y. Send PID-30 = Y with a death date, or neither."})
	ruleNK1NameMissing = def(Rule{ID: "nk1-2-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "NK1-2 (next of kin name) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "NK1-2", Reference: refZ22,
		Message: "{at} (next of kin name) is empty. Send the responsible person's name as Family^Given."})
	ruleNK1RelationshipMissing = def(Rule{ID: "nk1-3-missing", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "NK1-3 (relationship) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "NK1-3", Reference: refZ22,
		Message: "{at} (relationship to the patient) is empty. Send an HL7 table 0063 code, e.g. MTH^Mother^HL70063."})
	ruleORC3Missing = def(Rule{ID: "orc-3-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "ORC-3 (filler order number) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "ORC-3", Reference: refZ22,
		Message: "{at} (Filler Order Number) is empty. Send your unique ID of the vaccination record; updates and deletions find the dose by it."})
	ruleRXA3Missing = def(Rule{ID: "rxa-3-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-3 (administration date) is empty.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-3", Reference: refZ22,
		Message: "{at} (administration date) is empty, so the vaccination was not recorded. Send the date the dose was given as YYYYMMDD."})
	ruleRXA5Missing = def(Rule{ID: "rxa-5-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-5 (administered code) is empty.",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-5", Reference: refZ22,
		Message: "{at} (vaccine code) is empty, so the vaccination was not recorded. Send the CVX code, e.g. 08^Hep B, adolescent or pediatric^CVX."})
	ruleRXA6Missing = def(Rule{ID: "rxa-6-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-6 (administered amount) is empty.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-6", Reference: refZ22,
		Message: "{at} (administered amount) is empty. Send the dose volume, e.g. 0.5 with RXA-7 mL^mL^UCUM, or 999 when it is unknown."})
	ruleRXR1Missing = def(Rule{ID: "rxr-1-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXR-1 (route) is empty in an RXR segment.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXR-1", Reference: refZ22,
		Message: "{at} (route of administration) is empty. Send an NCIT route code, e.g. C28161^Intramuscular^NCIT."})

	ruleRXA7Missing = def(Rule{ID: "rxa-7-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-7 (units) is empty although RXA-6 gives an amount other than 999.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-7", Reference: "Z22 predicate on RXA-7",
		Message: "{at} (units of the administered amount) is empty although RXA-6 is {value}. Send mL^mL^UCUM."})
	ruleRXA9Missing = def(Rule{ID: "rxa-9-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-9 (administration notes: administered or historical) is empty for a completed dose.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-9", Reference: "Z22 predicate on RXA-9",
		Message: "{at} (information source) is empty. Send 00^New immunization record^NIP001 for a dose you gave, 01^Historical^NIP001 for a reported one. Treated as {detail}."})
	ruleRXA9NotAllowed = def(Rule{ID: "rxa-9-not-allowed", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-9 is valued for a dose that was not given (RXA-20 RE or NA).",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppDataWasIgnored,
		Location: "RXA-9", Reference: "Z22 constraint IZ-47",
		Message: "{at} (information source) is valued although RXA-20 says no dose was given; it was ignored. Leave RXA-9 empty for refusals and not-administered records."})
	ruleLotMissing = def(Rule{ID: "rxa-15-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-15 (lot number) is empty for an administered dose (RXA-9 = 00).",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-15", Reference: "Z22 predicate on RXA-15",
		Message: "{at} (lot number) is empty for a dose you administered. Send the lot number from the vial or syringe."})
	ruleMVXMissing = def(Rule{ID: "rxa-17-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-17 (manufacturer) is empty for an administered dose (RXA-9 = 00).",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-17", Reference: "Z22 predicate on RXA-17",
		Message: "{at} (manufacturer) is empty for a dose you administered. Send the CDC MVX code, e.g. PMC^Sanofi Pasteur^MVX."})
	ruleRefusalReasonMissing = def(Rule{ID: "rxa-18-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "A refusal (RXA-20 = RE) without RXA-18 (refusal reason).",
		Severity:    ack.Error, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-18", Reference: "Z22 predicate on RXA-18",
		Message: "RXA-20 is RE (refused) but RXA-18 (refusal reason) is empty, so the refusal was not recorded. Send e.g. 00^Parental decision^NIP002."})
	ruleRefusalReasonNotAllowed = def(Rule{ID: "rxa-18-not-allowed", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-18 (refusal reason) is valued but RXA-20 is not RE.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "RXA-18, RXA-20", Reference: "Z22 constraint IZ-32",
		Message: "RXA-18 gives a refusal reason but RXA-20 is {value}, not RE: it is unclear whether the dose was given, so it was not recorded. Send RXA-20 = RE for a refusal."})
	ruleActionMissing = def(Rule{ID: "rxa-21-missing", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-21 (action code) is empty for a vaccination (RXA-5 not 998).",
		Severity:    ack.Information, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "RXA-21", Reference: "Z22 predicate on RXA-21",
		Message: "{at} (action code) is empty; the record was treated as A (add). Send A to add, U to update, D to delete."})
	ruleAmount999 = def(Rule{ID: "rxa-6-not-999", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-6 must be 999 when RXA-5 is 998 or RXA-20 is RE.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "RXA-6", Reference: "Z22 constraints IZ-48, IZ-49",
		Message: "{at} (administered amount) is {value} for {detail}, where no dose was given. Send 999."})
	ruleRXA4Mismatch = def(Rule{ID: "rxa-4-mismatch", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-4 (end of administration), when valued, differs from RXA-3.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "RXA-4", Reference: "Z22 constraint IZ-30",
		Message: "{at} ({value}) differs from RXA-3. Send the same date/time in both, or leave RXA-4 empty."})
	ruleSubIDCounter = def(Rule{ID: "rxa-sub-id", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "RXA-1 must be 0 and RXA-2 must be 1.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "RXA-1, RXA-2", Reference: "Z22 constraints IZ-28, IZ-29",
		Message: "{at} is {value}; Z22 requires {detail}."})
	ruleORC1Value = def(Rule{ID: "orc-1-value", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "ORC-1 (order control) must be RE.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "ORC-1", Reference: "Z22 constraint IZ-25",
		Message: "{at} (order control) is {value}; send RE."})
	ruleORC3NotGiven = def(Rule{ID: "orc-3-not-given", Family: FamilyUsage, Scope: ScopeVaccination,
		Description: "ORC-3.1 must be 9999 when RXA-20 is NA or RE (no dose given).",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "ORC-3", Reference: "Z22 constraint IZ-45",
		Message: "{at} is {value} for a record of a dose not given (RXA-20 {detail}); the guide asks for 9999."})
	ruleOBX6Missing = def(Rule{ID: "obx-6-missing", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "OBX-6 (units) is empty for a numeric observation (OBX-2 = NM).",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "OBX-6", Reference: "Z22 predicate on OBX-6",
		Message: "{at} (units) is empty for a numeric observation. Send the UCUM units of OBX-5."})
	ruleOBX4Value = def(Rule{ID: "obx-4-value", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "OBX-4 (observation sub-ID) must be a positive integer.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "OBX-4", Reference: "Z22 constraint IZ-44",
		Message: "{at} (observation sub-ID) is {value}; send a positive integer that groups related observations (1, 2, ...)."})
	ruleOBX11Value = def(Rule{ID: "obx-11-value", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "OBX-11 (result status) must be F.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "OBX-11", Reference: "Z22 constraint IZ-22",
		Message: "{at} (observation result status) is {value}; send F."})
	ruleSetIDSequence = def(Rule{ID: "set-id-sequence", Family: FamilyUsage, Scope: ScopeSegment,
		Description: "PID-1 must be 1; NK1-1 and OBX-1 must count 1, 2, ... (OBX within the message or each order).",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-1, NK1-1, OBX-1", Reference: "Z22 constraints IZ-46, IZ-70, NIST-01",
		Message: "{at} (Set ID) is {value}; {detail}."})
	ruleMSH15Value = def(Rule{ID: "msh-15-value", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-15 (accept acknowledgment type) should be ER.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "MSH-15", Reference: "Z22 constraint IZ-42",
		Message: "MSH-15 (Accept Acknowledgment Type) is {value}; send ER. The registry answers every message with an ACK anyway."})
	ruleMSH16Value = def(Rule{ID: "msh-16-value", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-16 (application acknowledgment type) should be AL.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "MSH-16", Reference: "Z22 constraint IZ-41",
		Message: "MSH-16 (Application Acknowledgment Type) is {value}; send AL. The registry answers every message with an ACK anyway."})
	ruleMSH2Value = def(Rule{ID: "msh-2-value", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "The delimiters are not the standard |^~\\&.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "MSH-1, MSH-2", Reference: "Z22 constraints IZ-12, IZ-13",
		Message: "The message uses the delimiters {value}; Z22 requires |^~\\&. The message was read with its own delimiters."})
	ruleMSH9Structure = def(Rule{ID: "msh-9-structure", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-9.3 (message structure) should be VXU_V04.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "MSH-9.3", Reference: "Z22 constraint IZ-17",
		Message: "MSH-9 is {value}; send VXU^V04^VXU_V04."})
	ruleMSH21Profile = def(Rule{ID: "msh-21-profile", Family: FamilyUsage, Scope: ScopeMessage,
		Description: "MSH-21 does not name the Z22 profile.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "MSH-21", Reference: "Z22 constraint IZ-43",
		Message: "MSH-21 is {value}; a VXU sent to the registry follows profile Z22. Send Z22^CDCPHINVS."})
)

// Data types: formats and lengths.
var (
	ruleDateInvalid = def(Rule{ID: "date-invalid", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "A date or date/time that is not a valid HL7 DTM/DT (fields with a rule of their own are listed separately).",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "any DT, DTM, TS element", Reference: "HL7 2.5.1 DTM",
		Message: "{at} ({name}) is {value}, which is not a valid date. Send YYYYMMDD[HHMM[SS]][+/-ZZZZ]."})
	ruleDatePrecision = def(Rule{ID: "date-precision", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "A date is valid but less or more precise than its Z22 flavour requires (TS_NZ: day, DT_D: YYYYMMDD, TS_M: month).",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "TS_NZ, DT_D, TS_M elements", Reference: "Z22 constraints IZ-TS_NZ, IZ-DT_D",
		Message: "{at} ({name}) is {value}; send it as {detail}."})
	ruleNumberInvalid = def(Rule{ID: "number-invalid", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "A numeric (NM) or sequence (SI) element that is not a number.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "any NM, SI element", Reference: "HL7 2.5.1 NM, SI",
		Message: "{at} ({name}) is {value}, which is not a number. Send digits, with an optional sign and decimal point."})
	ruleLength = def(Rule{ID: "length-exceeded", Family: FamilyDatatype, Scope: ScopeSegment,
		Description: "An element is longer than the profile's conformance length.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "any element", Reference: "Z22 profile, lengths",
		Message: "{at} ({name}) is {value} characters long; Z22 allows {detail}. The registry stores it as sent; systems it is shared with may truncate it."})
	ruleMSH7Invalid = def(Rule{ID: "msh-7-invalid", Family: FamilyDatatype, Scope: ScopeMessage,
		Description: "MSH-7 (date/time of message) is not a valid date/time.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "MSH-7", Reference: refZ22,
		Message: "MSH-7 (Date/Time of Message) is {value}, which is not a valid date/time; the message was processed with the time it was received. Send YYYYMMDDHHMMSS+/-ZZZZ."})
	ruleMSH7Precision = def(Rule{ID: "msh-7-precision", Family: FamilyDatatype, Scope: ScopeMessage,
		Description: "MSH-7 lacks seconds or the time zone offset.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "MSH-7", Reference: "Z22 constraint IZ-TS_Z",
		Message: "MSH-7 (Date/Time of Message) is {value}; send YYYYMMDDHHMMSS+/-ZZZZ with seconds and time zone."})
	rulePID7Invalid = def(Rule{ID: "pid-7-invalid", Family: FamilyDatatype, Scope: ScopeMessage,
		Description: "PID-7 (birth date) is not a valid full date.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "PID-7", Reference: "Z22 constraint IZ-TS_NZ",
		Message: "PID-7 (patient birth date) is {value}, which is not a valid date. Send YYYYMMDD."})
	ruleRXA3Invalid = def(Rule{ID: "rxa-3-invalid", Family: FamilyDatatype, Scope: ScopeVaccination,
		Description: "RXA-3 (administration date) is not a valid full date.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "RXA-3", Reference: "Z22 constraint IZ-TS_NZ",
		Message: "{at} (administration date) is {value}, which is not a valid date, so the vaccination was not recorded. Send YYYYMMDD."})
	ruleRXA16Invalid = def(Rule{ID: "rxa-16-invalid", Family: FamilyDatatype, Scope: ScopeVaccination,
		Description: "RXA-16 (lot expiration date) is not a valid date.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidDate,
		Location: "RXA-16", Reference: "Z22 TS_M",
		Message: "{at} (lot expiration date) is {value}, which is not a valid date. Send YYYYMMDD as printed on the vial."})
	ruleRXA6Invalid = def(Rule{ID: "rxa-6-invalid", Family: FamilyDatatype, Scope: ScopeVaccination,
		Description: "RXA-6 (administered amount) is not a number.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "RXA-6", Reference: "HL7 2.5.1 NM",
		Message: "{at} (administered amount) is {value}, which is not a number. Send the volume, e.g. 0.5, or 999 when unknown."})
)

// Codes: values against their value sets.
var (
	ruleCodeUnknown = def(Rule{ID: "code-unknown", Family: FamilyCode, Scope: ScopeSegment,
		Description: "A coded value is not in the value set the profile binds to the element (elements with a rule of their own are listed separately).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "any coded element", Reference: "Z22 value set bindings",
		Message: "{at} ({name}) is {value}, which is not in {detail}. Send a code from that table."})
	ruleCodingSystemUnknown = def(Rule{ID: "coding-system-unknown", Family: FamilyCode, Scope: ScopeSegment,
		Description: "The name of coding system (CE-3, CWE-3, CE-6) is not in HL7 table 0396.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "CE/CWE coding system components", Reference: "Z22 binding HL70396_IZ",
		Message: "{at} (coding system) is {value}, which is not in HL7 table 0396. Name the coding system of the code, e.g. CVX, MVX, HL70063, or 99xxx for a local one."})
	rulePID8Value = def(Rule{ID: "pid-8-value", Family: FamilyCode, Scope: ScopeMessage,
		Description: "PID-8 (administrative sex) is not F, M or U.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "PID-8", Reference: "Z22 binding HL70001_IZ",
		Message: "PID-8 (patient sex) is {value}; send F, M or U (unknown). It was recorded as unknown."})
	ruleRaceValue = def(Rule{ID: "pid-10-value", Family: FamilyCode, Scope: ScopeMessage,
		Description: "PID-10 (race) is not a CDC race code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "PID-10", Reference: "Z22 binding CDCREC_R_IZ",
		Message: "{at} (race) is {value}, which is not a CDC race code. Send e.g. 2106-3^White^CDCREC; 1002-5, 2028-9, 2054-5, 2076-8, 2106-3 and 2131-1 are valid."})
	ruleEthnicityValue = def(Rule{ID: "pid-22-value", Family: FamilyCode, Scope: ScopeMessage,
		Description: "PID-22 (ethnic group) is not a CDC ethnicity code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "PID-22", Reference: "Z22 binding CDCREC_E_IZ",
		Message: "{at} (ethnic group) is {value}; send 2135-2^Hispanic or Latino^CDCREC or 2186-5^Not Hispanic or Latino^CDCREC."})
	ruleNK1RelationshipValue = def(Rule{ID: "nk1-3-value", Family: FamilyCode, Scope: ScopeMessage,
		Description: "NK1-3 (relationship) is not in the guide's subset of HL7 table 0063.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "NK1-3", Reference: "Z22 binding HL70063_IZ",
		Message: "{at} (relationship) is {value}, which is not in HL7 table 0063 as the guide uses it. Send e.g. MTH (mother), FTH (father), GRD (guardian), PAR (parent)."})
	ruleRXA9Value = def(Rule{ID: "rxa-9-value", Family: FamilyCode, Scope: ScopeVaccination,
		Description: "RXA-9.1 (information source) is not a NIP001 code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-9", Reference: "Z22 binding NIP001, constraint IZ-31",
		Message: "{at} (information source) is {value}, which is not a NIP001 code; the dose was treated as {detail}. Send 00 (administered) or 01 to 08 (historical)."})
	ruleRXA18Value = def(Rule{ID: "rxa-18-value", Family: FamilyCode, Scope: ScopeVaccination,
		Description: "RXA-18 (refusal reason) is not a NIP002 code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-18", Reference: "Z22 binding NIP002",
		Message: "{at} (refusal reason) is {value}, which is not a NIP002 code. Send 00 (parental decision), 01 (religious exemption), 02 (other) or 03 (patient decision)."})
	ruleRXA20Value = def(Rule{ID: "rxa-20-value", Family: FamilyCode, Scope: ScopeVaccination,
		Description: "RXA-20 (completion status) is not CP, PA, NA or RE.",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-20", Reference: "Z22 binding HL70322_IZ",
		Message: "{at} (completion status) is {value}, so it is unclear whether a dose was given; the vaccination was not recorded. Send CP, PA, NA or RE."})
	ruleRXA21Value = def(Rule{ID: "rxa-21-value", Family: FamilyCode, Scope: ScopeVaccination,
		Description: "RXA-21 (action code) is not A, U or D.",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-21", Reference: "Z22 binding HL70323_IZ",
		Message: "{at} (action code) is {value}, so it is unclear whether to add, update or delete the record; it was not processed. Send A, U or D."})
	ruleRouteValue = def(Rule{ID: "rxr-1-value", Family: FamilyCode, Scope: ScopeVaccination,
		Description: "RXR-1 (route) is not an NCIT route code (or its HL7 table 0162 equivalent).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXR-1", Reference: "Z22 binding NCIT; HL70162",
		Message: "{at} (route) is {value}, which is not a route code. Send an NCIT code, e.g. C28161^Intramuscular^NCIT or C38299^Subcutaneous^NCIT."})
	ruleSiteValue = def(Rule{ID: "rxr-2-value", Family: FamilyCode, Scope: ScopeVaccination,
		Description: "RXR-2 (administration site) is not in HL7 table 0163 as the guide uses it.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXR-2", Reference: "Z22 binding HL70163_IZ",
		Message: "{at} (body site) is {value}, which is not an HL7 table 0163 site. Send e.g. LA^Left Arm^HL70163, RT^Right Thigh^HL70163."})
	ruleOBX3Value = def(Rule{ID: "obx-3-value", Family: FamilyCode, Scope: ScopeSegment,
		Description: "OBX-3 (observation identifier) is not one of the guide's LOINC observations (NIP003).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppDataWasIgnored,
		Location: "OBX-3", Reference: "Z22 binding NIP003",
		Message: "{at} (observation identifier) is {value}, which is not an immunization observation the guide defines; the observation was ignored."})
	ruleOBX5Value = def(Rule{ID: "obx-5-value", Family: FamilyCode, Scope: ScopeSegment,
		Description: "OBX-5 is not in the value set its OBX-3 observation requires (funding eligibility, funding source, immunity, contraindication, reaction, VIS vaccine type...).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "OBX-5", Reference: "Z22 constraints IZ-35, IZ-36, IZ-37; CDC IG value sets",
		Message: "{at} is {value}, which is not in {detail}. Send a code from that value set."})
	ruleOBX2Value = def(Rule{ID: "obx-2-mismatch", Family: FamilyCode, Scope: ScopeSegment,
		Description: "OBX-2 (value type) does not fit the observation of OBX-3 (e.g. TS for a coded observation).",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "OBX-2", Reference: refIG,
		Message: "{at} (value type) is {value} but observation {detail}. Send the value type the guide defines for it."})
	ruleVISDocumentUnknown = def(Rule{ID: "vis-document-unknown", Family: FamilyCode, Scope: ScopeSegment,
		Description: "OBX-5 of a 69764-9 observation is not a CDC VIS document bar code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "OBX-5 (69764-9)", Reference: "Z22 constraint IZ-36; CDC VIS bar codes",
		Message: "{at} is {value}, which is not a CDC VIS document bar code (cdcgs1vis). Send the GS1 code printed on the VIS given."})
)

// Vaccines: CDC code sets and what an administered or historical dose needs.
var (
	ruleRXA5System = def(Rule{ID: "rxa-5-coding-system", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-5 names no CVX or NDC code, but the code could be read as one (CPT mapped by the CDC, or a CVX without its coding system).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-5.3", Reference: "Z22 binding CVX:NDC",
		Message: "{at} is {value}; it was read as CVX {detail}. Send the CVX code with coding system CVX, e.g. 08^Hep B, adolescent or pediatric^CVX."})
	ruleRXA5Unknown = defLimit(Rule{ID: "rxa-5-unknown", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-5 is neither a CVX, an NDC nor a CPT code the CDC publishes.",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-5", Reference: "Z22 binding CVX:NDC",
		Message: "{at} is {value}, which is not a CDC vaccine code, so the vaccination was not recorded. Send the CVX code with coding system CVX."})
	ruleCVXUnknown = def(Rule{ID: "rxa-5-cvx-unknown", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-5 names a CVX code the CDC does not publish.",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-5", Reference: "CDC CVX",
		Message: "{at} is CVX {value}, which is not in the CDC CVX table, so the vaccination was not recorded. Send a current CVX code."})
	ruleNDCUnknown = defLimit(Rule{ID: "rxa-5-ndc-unknown", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-5 names an NDC the CDC's vaccine NDC tables do not list.",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-5", Reference: "CDC NDC unit of use / unit of sale",
		Message: "{at} is NDC {value}, which is not a vaccine NDC the CDC lists, so the vaccination was not recorded. Send the unit-of-use NDC in 5-4-2 form, or the CVX code."})
	ruleCVXInactive = def(Rule{ID: "rxa-5-cvx-inactive", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose (RXA-9 = 00) with a CVX code that was inactive at the administration date.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppIllogicalValue,
		Location: "RXA-5", Reference: refSpec + " 2.4; CDC CVX status",
		Message: "{at} is CVX {value} ({detail}), which the CDC lists as inactive: it is used for historical doses only. Send the CVX code of the product given."})
	ruleCVXNeverActive = def(Rule{ID: "rxa-5-cvx-never-active", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "A CVX code the CDC lists as Never Active (a product never licensed).",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "RXA-5", Reference: refSpec + " 2.4; CDC CVX status",
		Message: "{at} is CVX {value} ({detail}), a code the CDC lists as never active; no dose can carry it. The vaccination was not recorded."})
	ruleCVXNonUS = def(Rule{ID: "rxa-5-cvx-non-us", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose (RXA-9 = 00) with a CVX code for a vaccine not licensed in the US.",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "RXA-5", Reference: refSpec + " 2.4; CDC CVX status",
		Message: "{at} is CVX {value} ({detail}), a non-US vaccine, on a dose reported as administered here. Report doses given abroad as historical (RXA-9 = 01)."})
	ruleCVXPending = def(Rule{ID: "rxa-5-cvx-pending", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "A CVX code the CDC lists as Pending (announced, not yet in use).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "RXA-5", Reference: "CDC CVX status",
		Message: "{at} is CVX {value} ({detail}), which the CDC lists as pending: not yet in use. Check the vaccine code."})
	ruleCVXUnspecified = def(Rule{ID: "rxa-5-cvx-unspecified", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose (RXA-9 = 00) reported with an 'unspecified formulation' CVX code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppIllogicalValue,
		Location: "RXA-5", Reference: refMQE + "; CDC CVX",
		Message: "{at} is CVX {value} ({detail}), an unspecified formulation, on a dose you administered. Send the CVX code of the exact product given."})
	ruleCVX999 = def(Rule{ID: "rxa-5-cvx-999", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose (RXA-9 = 00) reported with CVX 999 (unknown vaccine).",
		Severity:    ack.Error, Code: ack.CodeTableValueNotFound, App: ack.AppIllogicalValue,
		Location: "RXA-5", Reference: "CDC CVX",
		Message: "{at} is CVX 999 (unknown vaccine) on a dose you administered, so it was not recorded. Send the CVX code of the vaccine given."})
	rule998Given = def(Rule{ID: "rxa-5-998-given", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "CVX 998 (no vaccine administered) with a completion status saying a dose was given.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "RXA-5, RXA-20", Reference: refIG + " (CVX 998)",
		Message: "RXA-5 is 998 (no vaccine administered) but RXA-20 is {value}, which says a dose was given. Send RXA-20 = NA with 998, or the CVX of the vaccine given."})
	rule998NoObservation = def(Rule{ID: "rxa-5-998-no-observation", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "CVX 998 (no vaccine administered) without an OBX that says why (e.g. evidence of immunity).",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredObservationMissing,
		Location: "OBX after RXA-5 = 998", Reference: refIG + " (CVX 998)",
		Message: "RXA-5 is 998 (no vaccine administered) but no OBX says why, so there is nothing to record. Send e.g. OBX 59784-9 (disease with presumed immunity)."})
	ruleMVXUnknown = def(Rule{ID: "rxa-17-mvx-unknown", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-17 names a manufacturer code the CDC MVX table does not list.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-17", Reference: "CDC MVX",
		Message: "{at} is MVX {value}, which is not in the CDC MVX table; the manufacturer was not recorded. Send the CDC MVX code, e.g. PMC^Sanofi Pasteur^MVX."})
	ruleMVXInactive = def(Rule{ID: "rxa-17-mvx-inactive", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose with a manufacturer code that was inactive at the administration date.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppIllogicalValue,
		Location: "RXA-17", Reference: "CDC MVX status",
		Message: "{at} is MVX {value} ({detail}), which the CDC lists as inactive. Send the MVX code of the current manufacturer of the product."})
	ruleMVXSystem = def(Rule{ID: "rxa-17-coding-system", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-17.3 (coding system of the manufacturer) is not MVX.",
		Severity:    ack.Information, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-17.3", Reference: "Z22 binding MVX",
		Message: "{at} (coding system) is {value}; the manufacturer was read as an MVX code. Send MVX."})
	ruleProductMismatch = def(Rule{ID: "rxa-17-product-mismatch", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "The CVX (or NDC) and MVX do not name a product the CDC lists (CVX–MVX product table, NDC labeler).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppIllogicalValue,
		Location: "RXA-5, RXA-17", Reference: refSpec + " 2.4; CDC product names",
		Message: "{at} is {value}, but the CDC lists no product {detail}. Check the vaccine code and the manufacturer."})
	ruleFundingMissing = def(Rule{ID: "funding-eligibility-missing", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose (RXA-9 = 00) without the OBX 64994-7 funding program eligibility observation.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredObservationMissing,
		Location: "OBX 64994-7", Reference: "Z22 constraint IZ-23",
		Message: "The administered dose has no OBX 64994-7 (funding program eligibility). Send OBX|n|CE|64994-7^Vaccine funding program eligibility category^LN|1|V01^Not VFC eligible^HL70064 (or V02-V05)."})
	ruleVISMissing = def(Rule{ID: "vis-missing", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose of a vaccine with a VIS without the VIS observations (document or vaccine type and edition, and date given).",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredObservationMissing,
		Location: "OBX 69764-9 / 30956-7, 29768-9, 29769-7", Reference: "Z22 constraint IZ-24",
		Message: "The administered dose of CVX {value} has no complete VIS observations. Send OBX 69764-9 (VIS bar code) or 30956-7 + 29768-9 (vaccine type, edition), with 29769-7 (date given), sharing one OBX-4."})
	ruleLotPlaceholder = def(Rule{ID: "rxa-15-invalid", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-15 (lot number) is a placeholder such as N/A, UNKNOWN or 0.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "RXA-15", Reference: refMQE,
		Message: "{at} (lot number) is {value}, which is not a lot number. Send the lot number printed on the vial or syringe."})
	ruleAmountZero = def(Rule{ID: "rxa-6-zero", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "An administered dose with an administered amount of zero or less.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "RXA-6", Reference: refMQE,
		Message: "{at} (administered amount) is {value} for a dose you administered. Send the volume given, e.g. 0.5, or 999 when unknown."})
)

// Dates: valid dates that contradict each other or the calendar.
var (
	ruleBirthFuture = def(Rule{ID: "pid-7-future", Family: FamilyDate, Scope: ScopeMessage,
		Description: "PID-7 (birth date) is in the future.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "PID-7", Reference: refSpec + " 2.4; " + refMQE,
		Message: "PID-7 (patient birth date) is {value}, which is in the future. Send the patient's birth date."})
	ruleBirthImplausible = def(Rule{ID: "pid-7-implausible", Family: FamilyDate, Scope: ScopeMessage,
		Description: "PID-7 (birth date) makes the patient older than 125 years.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "PID-7", Reference: refMQE,
		Message: "PID-7 (patient birth date) is {value}, which makes the patient older than 125 years. Check the birth date."})
	ruleDeathBeforeBirth = def(Rule{ID: "pid-29-before-birth", Family: FamilyDate, Scope: ScopeMessage,
		Description: "PID-29 (death date) is before the birth date.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "PID-29", Reference: refMQE,
		Message: "PID-29 (death date) {value} is before the birth date {detail}. Check both dates."})
	ruleMessageFuture = def(Rule{ID: "msh-7-future", Family: FamilyDate, Scope: ScopeMessage,
		Description: "MSH-7 (date/time of message) is more than a day in the future.",
		Severity:    ack.Information, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "MSH-7", Reference: refMQE,
		Message: "MSH-7 (Date/Time of Message) is {value}, which is in the future. Check the sending system's clock and time zone."})
	ruleAdminFuture = def(Rule{ID: "rxa-3-future", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "RXA-3 (administration date) is in the future.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "RXA-3", Reference: refSpec + " 2.4",
		Message: "{at} (administration date) is {value}, which is in the future, so the vaccination was not recorded. Send the date the dose was given."})
	ruleAdminBeforeBirth = def(Rule{ID: "rxa-3-before-birth", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "RXA-3 (administration date) is before the patient's birth date.",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "RXA-3", Reference: refSpec + " 2.4",
		Message: "{at} (administration date) {value} is before the patient's birth date {detail}, so the vaccination was not recorded. Check both dates."})
	ruleAdminAfterDeath = def(Rule{ID: "rxa-3-after-death", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "RXA-3 (administration date) is after the patient's death date (PID-29).",
		Severity:    ack.Error, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "RXA-3", Reference: refMQE,
		Message: "{at} (administration date) {value} is after the patient's death date {detail}, so the vaccination was not recorded. Check both dates."})
	ruleAdminAfterMessage = def(Rule{ID: "rxa-3-after-message", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "RXA-3 (administration date) is later than the message date (MSH-7).",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "RXA-3", Reference: refMQE,
		Message: "{at} (administration date) {value} is later than the message date {detail}. Check both dates and the time zone."})
	ruleLotExpired = def(Rule{ID: "rxa-16-expired", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "An administered dose from a lot that had expired (RXA-16) before the administration date.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "RXA-16", Reference: refSpec + " 2.4; " + refMQE,
		Message: "{at} (lot expiration date) {value} is before the administration date {detail}: the lot had expired. Check the dates; an expired dose may need repeating."})
	ruleVISPublishedAfterPresented = def(Rule{ID: "vis-published-after-presented", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "The VIS edition date (29768-9) is after the date the VIS was given (29769-7) or after the administration.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "OBX-5 (29768-9)", Reference: refIG,
		Message: "{at} (VIS edition date) {value} is after {detail}; a VIS cannot be given before it is published. Send the edition date printed on the VIS given."})
	ruleVISPresentedAfterAdmin = def(Rule{ID: "vis-presented-after-administration", Family: FamilyDate, Scope: ScopeVaccination,
		Description: "The date the VIS was given (29769-7) is after the administration date.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalDate,
		Location: "OBX-5 (29769-7)", Reference: refIG,
		Message: "{at} (date the VIS was given) {value} is after the administration date {detail}; the VIS is given before the dose. Check the date."})
)

// Quality: plausibility of what was reported.
var (
	ruleNamePlaceholder = def(Rule{ID: "name-placeholder", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A patient or next-of-kin name is a placeholder (BABY, TEST, UNKNOWN, NONE, ...).",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-5, PID-6, NK1-2", Reference: refMQE,
		Message: "{at} ({name}) is {value}, which is a placeholder, not a name. Send the real name, or leave it empty when unknown."})
	ruleNameCharacters = def(Rule{ID: "name-characters", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A patient or next-of-kin name contains digits or characters names do not have.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-5, PID-6, NK1-2", Reference: refMQE,
		Message: "{at} ({name}) contains characters a name does not have: {detail}. Send letters, spaces, hyphens, apostrophes and periods only."})
	ruleAgeImplausible = def(Rule{ID: "rxa-5-age-implausible", Family: FamilyQuality, Scope: ScopeVaccination,
		Description: "The vaccine is not given at the patient's age on the administration date (e.g. rotavirus after 8 months, DTaP from 7 years, zoster before 18).",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "RXA-5, RXA-3, PID-7", Reference: refMQE + "; ACIP schedules",
		Message: "{at} is CVX {value}, given at age {detail}. Check the vaccine code, the administration date and the birth date."})
	ruleAddressIncomplete = def(Rule{ID: "address-incomplete", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A US address without street, city, state or ZIP code.",
		Severity:    ack.Warning, Code: ack.CodeRequiredFieldMissing, App: ack.AppRequiredDataMissing,
		Location: "PID-11, NK1-4", Reference: refMQE,
		Message: "{at} (address) has no {detail}. Send street^^city^state^ZIP^country^type."})
	ruleAddressState = def(Rule{ID: "address-state-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A US address whose state is not a USPS state or territory code.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "PID-11.4, NK1-4.4", Reference: refMQE,
		Message: "{at} (state) is {value}, which is not a USPS state code. Send the two-letter code, e.g. MA."})
	ruleAddressZip = def(Rule{ID: "address-zip-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A US address whose ZIP code is not 5 digits or ZIP+4.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-11.5, NK1-4.5", Reference: refMQE,
		Message: "{at} (ZIP code) is {value}; send 5 digits or ZIP+4 (12345-6789)."})
	rulePhoneInvalid = def(Rule{ID: "phone-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A telephone number without a valid US area code and 7-digit local number.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-13, NK1-5", Reference: refMQE + "; Z22 XTN_IZ",
		Message: "{at} (telephone) is {value}; send it as ^PRN^PH^^^area code^local number, e.g. ^PRN^PH^^^617^5551212."})
	ruleEmailInvalid = def(Rule{ID: "email-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "An e-mail address (XTN-2 = NET) that is not of the form name@domain.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-13, NK1-5", Reference: refMQE + "; Z22 XTN_IZ",
		Message: "{at} (e-mail) is {value}, which is not an e-mail address. Send it as ^NET^Internet^name@example.org."})
)
