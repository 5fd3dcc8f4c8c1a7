package soap

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// FaultKind names a fault of the CDC WSDL: the element carried in the SOAP fault's Detail.
type FaultKind string

// The faults the WSDL declares. UnknownFault's detail element is tns:fault (the WSDL's
// UnknownFault_Message part); the others' are named like the fault.
const (
	UnknownFault              FaultKind = "UnknownFault"
	SecurityFault             FaultKind = "SecurityFault"
	MessageTooLargeFault      FaultKind = "MessageTooLargeFault"
	UnsupportedOperationFault FaultKind = "UnsupportedOperationFault"
)

// element is the local name, in Namespace, of the fault's detail element.
func (k FaultKind) element() string {
	if k == UnknownFault {
		return "fault"
	}
	return string(k)
}

// The Code values of the faults' detail (xsd:integer). The WSDL leaves them open; where the CDC's
// IZ Gateway defines one for the same situation, it is used, so that senders that already handle
// the gateway's faults recognise these.
const (
	CodeMalformedRequest     = 2  // UnknownFault, soap:Sender: not a well-formed SOAP request
	CodeInternalError        = 3  // UnknownFault, soap:Receiver: the registry failed
	CodeUnavailable          = 4  // UnknownFault, soap:Receiver: the registry's database is unavailable; retry later
	CodeMessageTooLarge      = 30 // MessageTooLargeFault
	CodeUnsupportedOperation = 50 // UnsupportedOperationFault
	CodeSecurity             = 60 // SecurityFault
)

// The Reason values of the faults' detail. The CDC's 2011 WSDL, as the NIST test tool uses it,
// fixes them for the typed faults (xsd:element Reason fixed="..."): a client generated from it
// rejects any other value. UnknownFault's Reason is free text there; it follows the same pattern.
const (
	ReasonUnknown              = "Unknown"
	ReasonSecurity             = "Security"
	ReasonMessageTooLarge      = "MessageTooLarge"
	ReasonUnsupportedOperation = "UnsupportedOperation"
)

// SOAP envelope namespaces.
const (
	nsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
)

// version is the SOAP version of a request, which its answer uses too.
type version int

const (
	soap12 version = iota // the WSDL's binding, and the default
	soap11                // accepted from clients that only speak SOAP 1.1
)

func (v version) namespace() string {
	if v == soap11 {
		return nsSOAP11
	}
	return nsSOAP12
}

func (v version) contentType() string {
	if v == soap11 {
		return "text/xml; charset=utf-8"
	}
	return "application/soap+xml; charset=utf-8"
}

// soapCode is the SOAP-level fault code (SOAP 1.2 env:Code/env:Value).
type soapCode string

const (
	codeSender          soapCode = "Sender"
	codeReceiver        soapCode = "Receiver"
	codeVersionMismatch soapCode = "VersionMismatch"
)

// fault is an answer that is a SOAP fault. kind is empty for faults the WSDL does not describe
// (VersionMismatch), which carry no CDC detail.
type fault struct {
	kind   FaultKind
	code   soapCode
	number int    // detail Code
	reason string // detail Reason: the WSDL's fixed value for the kind (Reason* constants)
	detail string // detail Detail: what the sender should know and do
	// httpStatus overrides the status the SOAP HTTP binding gives the fault (415 for a content type
	// that is not SOAP).
	httpStatus int
	// retryAfter, when set, is sent as the HTTP Retry-After header (seconds): the request may
	// succeed if sent again after that long.
	retryAfter time.Duration
	// outcome is the metrics label; auth failures carry their reason for the log and metrics only.
	outcome    string
	authReason string
}

func (f *fault) Error() string {
	return fmt.Sprintf("soap: %s (%d %s): %s", f.kind, f.number, f.reason, f.detail)
}

// status is the HTTP status of the fault: SOAP 1.2's HTTP binding answers env:Sender with 400 and
// every other fault with 500; SOAP 1.1 answers every fault with 500.
func (f *fault) status(v version) int {
	if f.httpStatus != 0 {
		return f.httpStatus
	}
	if v == soap12 && f.code == codeSender {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func malformed(format string, args ...any) *fault {
	return &fault{kind: UnknownFault, code: codeSender, number: CodeMalformedRequest,
		reason: ReasonUnknown, detail: fmt.Sprintf(format, args...), outcome: "malformed"}
}

// outcomeCanceled marks an internal fault caused by the client going away, which is answered
// like any internal failure (if anyone still listens) but is not the registry's failure.
const outcomeCanceled = "canceled"

func internalFault(ctx context.Context) *fault {
	f := &fault{kind: UnknownFault, code: codeReceiver, number: CodeInternalError, reason: ReasonUnknown,
		detail:  "The registry could not process the request because of an internal error. Send the same request again later: messages it already stored are recognised and answered with their original ACK.",
		outcome: "internal_error"}
	if ctx.Err() != nil {
		f.outcome = outcomeCanceled
	}
	return f
}

// unavailableFault answers a request that could not be processed because the registry's database
// is unavailable: nothing of it was acknowledged, and the same request sent again after retryAfter
// is expected to succeed (messages already stored are recognised as resends).
func unavailableFault(retryAfter time.Duration) *fault {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	return &fault{kind: UnknownFault, code: codeReceiver, number: CodeUnavailable, reason: ReasonUnknown,
		detail: fmt.Sprintf("The registry is temporarily unable to store messages; nothing in this request was acknowledged. "+
			"Send the same request again in %d seconds: messages it already stored are recognised and answered with their original ACK.", secs),
		retryAfter: retryAfter, outcome: "unavailable"}
}

func securityFault(authReason string) *fault {
	return &fault{kind: SecurityFault, code: codeSender, number: CodeSecurity, reason: ReasonSecurity,
		detail:  "Authentication failed: the username, password or facility ID was not accepted.",
		outcome: "security", authReason: authReason}
}

func tooLargeFault(detail string) *fault {
	return &fault{kind: MessageTooLargeFault, code: codeSender, number: CodeMessageTooLarge,
		reason: ReasonMessageTooLarge, detail: detail, outcome: "too_large"}
}

func unsupportedFault(space, local string) *fault {
	name := local
	if space != "" {
		name = "{" + space + "}" + local
	}
	return &fault{kind: UnsupportedOperationFault, code: codeSender, number: CodeUnsupportedOperation,
		reason: ReasonUnsupportedOperation,
		detail: fmt.Sprintf("Operation %s is not supported: this service implements connectivityTest and submitSingleMessage in namespace %s.",
			name, Namespace),
		outcome: "unsupported"}
}

func versionMismatch(space string) *fault {
	return &fault{code: codeVersionMismatch, reason: "Version mismatch",
		detail:  fmt.Sprintf("The envelope namespace %q is not SOAP 1.2 (%s) or SOAP 1.1 (%s).", space, nsSOAP12, nsSOAP11),
		outcome: "malformed"}
}

// text is the fault for people (env:Reason, faultstring): many clients show only this, so it
// carries the fault's name and its detail.
func (f *fault) text() string {
	if f.kind == "" {
		return f.reason + ": " + f.detail
	}
	return string(f.kind) + ": " + f.detail
}

// writeXMLText writes s as XML character data. encoding/xml escapes CR as &#xD;, so the segment
// separators of an HL7 ACK survive the receiver's XML line-end normalisation.
func writeXMLText(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}

// encodeFault returns the fault as a SOAP envelope of version v.
func encodeFault(v version, f *fault) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<soap:Envelope xmlns:soap="` + v.namespace() + `">`)
	if f.code == codeVersionMismatch && v == soap12 {
		// SOAP 1.2 §5.4.7: say which envelope versions are supported.
		b.WriteString(`<soap:Header><soap:Upgrade><soap:SupportedEnvelope qname="soap:Envelope"/>` +
			`<soap:SupportedEnvelope qname="s11:Envelope" xmlns:s11="` + nsSOAP11 + `"/></soap:Upgrade></soap:Header>`)
	}
	b.WriteString(`<soap:Body><soap:Fault>`)
	code := string(f.code)
	if v == soap11 {
		// SOAP 1.1 names the parties Client and Server.
		switch f.code {
		case codeSender:
			code = "Client"
		case codeReceiver:
			code = "Server"
		}
		b.WriteString(`<faultcode>soap:` + code + `</faultcode><faultstring>`)
		writeXMLText(&b, f.text())
		b.WriteString(`</faultstring>`)
		if f.kind != "" {
			b.WriteString(`<detail>`)
			writeDetail(&b, f)
			b.WriteString(`</detail>`)
		}
	} else {
		b.WriteString(`<soap:Code><soap:Value>soap:` + code + `</soap:Value></soap:Code>`)
		b.WriteString(`<soap:Reason><soap:Text xml:lang="en">`)
		writeXMLText(&b, f.text())
		b.WriteString(`</soap:Text></soap:Reason>`)
		if f.kind != "" {
			b.WriteString(`<soap:Detail>`)
			writeDetail(&b, f)
			b.WriteString(`</soap:Detail>`)
		}
	}
	b.WriteString(`</soap:Fault></soap:Body></soap:Envelope>`)
	return b.Bytes()
}

func writeDetail(b *bytes.Buffer, f *fault) {
	el := f.kind.element()
	b.WriteString(`<` + el + ` xmlns="` + Namespace + `"><Code>` + strconv.Itoa(f.number) + `</Code><Reason>`)
	writeXMLText(b, f.reason)
	b.WriteString(`</Reason><Detail>`)
	writeXMLText(b, f.detail)
	b.WriteString(`</Detail></` + el + `>`)
}

// encodeResponse returns the answer of an operation: <{op}Response><return>text</return>.
func encodeResponse(v version, op, text string) []byte {
	var b bytes.Buffer
	b.Grow(len(text) + len(text)/8 + 256)
	b.WriteString(xml.Header)
	b.WriteString(`<soap:Envelope xmlns:soap="` + v.namespace() + `"><soap:Body>`)
	b.WriteString(`<` + op + `Response xmlns="` + Namespace + `"><return>`)
	writeXMLText(&b, text)
	b.WriteString(`</return></` + op + `Response></soap:Body></soap:Envelope>`)
	return b.Bytes()
}
