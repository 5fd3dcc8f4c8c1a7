package ack

import "strconv"

// Severity is ERR-4 (HL7 table 0516): how serious a finding is.
type Severity string

// The severities, most serious first.
const (
	Error       Severity = "E"
	Warning     Severity = "W"
	Information Severity = "I"
)

// rank orders severities for sorting: errors first.
func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	default:
		return 2
	}
}

// Code is an HL7 error code (ERR-3, HL7 table 0357).
type Code int

// HL7 table 0357 message error condition codes.
const (
	CodeAccepted              Code = 0
	CodeSegmentSequence       Code = 100
	CodeRequiredFieldMissing  Code = 101
	CodeDataType              Code = 102
	CodeTableValueNotFound    Code = 103
	CodeUnsupportedMessage    Code = 200
	CodeUnsupportedEvent      Code = 201
	CodeUnsupportedProcessing Code = 202
	CodeUnsupportedVersion    Code = 203
	CodeUnknownKey            Code = 204
	CodeDuplicateKey          Code = 205
	CodeApplicationLocked     Code = 206
	CodeInternalError         Code = 207
)

// Text is the table 0357 text of the code, used as ERR-3.2.
func (c Code) Text() string {
	switch c {
	case CodeAccepted:
		return "Message accepted"
	case CodeSegmentSequence:
		return "Segment sequence error"
	case CodeRequiredFieldMissing:
		return "Required field missing"
	case CodeDataType:
		return "Data type error"
	case CodeTableValueNotFound:
		return "Table value not found"
	case CodeUnsupportedMessage:
		return "Unsupported message type"
	case CodeUnsupportedEvent:
		return "Unsupported event code"
	case CodeUnsupportedProcessing:
		return "Unsupported processing id"
	case CodeUnsupportedVersion:
		return "Unsupported version id"
	case CodeUnknownKey:
		return "Unknown key identifier"
	case CodeDuplicateKey:
		return "Duplicate key identifier"
	case CodeApplicationLocked:
		return "Application record locked"
	case CodeInternalError:
		return "Application internal error"
	}
	return "Code " + strconv.Itoa(int(c))
}

// AppCode is an application error code (ERR-5, CDC table 0533).
type AppCode int

// CDC table 0533 application error codes. AppNone leaves ERR-5 empty.
const (
	AppNone                       AppCode = 0
	AppIllogicalDate              AppCode = 1
	AppInvalidDate                AppCode = 2
	AppIllogicalValue             AppCode = 3
	AppInvalidValue               AppCode = 4
	AppTableValueNotFound         AppCode = 5
	AppRequiredObservationMissing AppCode = 6
	AppRequiredDataMissing        AppCode = 7
	AppDataWasIgnored             AppCode = 8
)

// Text is the table 0533 text of the code, used as ERR-5.2.
func (c AppCode) Text() string {
	switch c {
	case AppIllogicalDate:
		return "Illogical Date error"
	case AppInvalidDate:
		return "Invalid Date"
	case AppIllogicalValue:
		return "Illogical Value error"
	case AppInvalidValue:
		return "Invalid value"
	case AppTableValueNotFound:
		return "Table value not found"
	case AppRequiredObservationMissing:
		return "Required observation missing"
	case AppRequiredDataMissing:
		return "Required data missing"
	case AppDataWasIgnored:
		return "Data was ignored"
	}
	return ""
}

// Location is ERR-2 (ERL): where in the message a finding is. Zero fields are left empty.
type Location struct {
	Segment   string // segment ID, e.g. "PID"
	Sequence  int    // 1-based occurrence of the segment in the message
	Field     int
	Rep       int
	Component int
	Sub       int
}

// Finding is one thing the engine found in a message: an error, a warning or an information.
type Finding struct {
	Rule     string // stable rule identifier, e.g. "pid-7-birth-date-future"
	Location Location
	Code     Code
	Severity Severity
	App      AppCode
	Text     string // plain-language message for the sender (ERR-8)
	// Group is the 1-based order group (ORC/RXA/RXR/OBX) the finding is about, 0 when it is about
	// the message or the patient. An error in a group rejects that vaccination only.
	Group int
}
