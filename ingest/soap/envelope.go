package soap

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// Namespace is the target namespace of the CDC IIS 2011 WSDL: the operations' elements, their
// fields and the fault details live in it.
const Namespace = "urn:cdc:iisb:2011"

// WS-Security namespaces of the UsernameToken header (OASIS WSS 1.0 and 1.1).
const (
	nsWSSE10 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
	nsXSI    = "http://www.w3.org/2001/XMLSchema-instance"
)

// isPasswordText reports whether a UsernameToken Password Type is PasswordText (the default when
// absent; old clients write it as a QName). A PasswordDigest cannot be checked: it needs the
// plain password on the server, which stores only a hash.
func isPasswordText(typ string) bool {
	return typ == "" || typ == "PasswordText" ||
		strings.HasSuffix(typ, "#PasswordText") || strings.HasSuffix(typ, ":PasswordText")
}

// The operations of the WSDL.
const (
	opConnectivityTest    = "connectivityTest"
	opSubmitSingleMessage = "submitSingleMessage"
)

const (
	// maxDepth bounds element nesting: a CDC request is five levels deep, and the bound keeps a
	// hostile document from making the decoder's stack as large as the body.
	maxDepth = 32
	// maxField bounds username, password and facilityID.
	maxField = 4 << 10
)

// request is a decoded SOAP request.
type request struct {
	version version
	op      string // opConnectivityTest or opSubmitSingleMessage

	echoBack    string
	hasEchoBack bool // the echoBack element was there (possibly empty or nil)

	username, password, facilityID string
	hl7Message                     []byte

	token *usernameToken // from a WS-Security header; nil when there is none
}

// usernameToken is a WS-Security UsernameToken.
type usernameToken struct {
	username, password string
	passwordType       string // the Password's Type attribute; empty means PasswordText
}

// decodeEnvelope reads a SOAP 1.2 (or 1.1) request from r. maxPayload bounds hl7Message and
// echoBack: a longer one stops the decoding with a MessageTooLargeFault. charset is the HTTP
// Content-Type charset, which takes precedence over the XML declaration; empty means UTF-8 or
// whatever the document declares.
//
// Errors are a *fault (the request is wrong: malformed, too large, an unsupported operation) or a
// wrapped read error of r. With an error, the request is returned as far as it was read (nil before
// the envelope's start), so that the answer can use its SOAP version and name its operation.
func decodeEnvelope(r io.Reader, maxPayload int, charset string) (*request, error) {
	er := &errReader{r: r}
	br := bufio.NewReader(er)
	// .NET and Java clients may start with a UTF-8 byte order mark, which encoding/xml rejects
	// before the XML declaration.
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	x := xml.NewDecoder(br)
	x.CharsetReader = readerFor
	if charset != "" && !isUTF8(charset) {
		rd, err := readerFor(charset, br)
		if err != nil {
			return nil, err
		}
		// The body is UTF-8 from here on, whatever the XML declaration says.
		x = xml.NewDecoder(rd)
		x.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	}
	x.Strict = true
	d := &decoder{x: x, er: er, maxPayload: maxPayload}
	return d.envelope()
}

// errReader remembers the error of the underlying reader, so that a failing body (too large, the
// client gone) is told apart from a malformed document.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

func isUTF8(label string) bool {
	l := strings.ToLower(strings.TrimSpace(label))
	return l == "utf-8" || l == "utf8"
}

// readerFor decodes the character sets senders use besides UTF-8 into UTF-8.
func readerFor(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1":
		return charmap.ISO8859_1.NewDecoder().Reader(in), nil
	case "windows-1252", "cp1252":
		return charmap.Windows1252.NewDecoder().Reader(in), nil
	}
	return nil, malformed("Character set %q is not supported: send UTF-8.", label)
}

type decoder struct {
	x           *xml.Decoder
	er          *errReader
	depth       int
	maxPayload  int
	unsupported *fault // the Body held an element that is not an operation of the WSDL
}

// token returns the next token, tracking depth and turning syntax errors into faults.
// At the end of the document it returns io.EOF.
func (d *decoder) token() (xml.Token, error) {
	t, err := d.x.Token()
	if err != nil {
		if d.er.err != nil {
			return nil, fmt.Errorf("soap: read request: %w", d.er.err)
		}
		if err == io.EOF {
			return nil, io.EOF
		}
		var f *fault
		if errors.As(err, &f) {
			return nil, f
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) && se.Msg == "unexpected EOF" {
			return nil, malformed("The request ends before the SOAP envelope is complete.")
		}
		return nil, malformed("The request is not well-formed XML: %s.", strings.TrimPrefix(err.Error(), "xml: "))
	}
	switch t := t.(type) {
	case xml.StartElement:
		d.depth++
		if d.depth > maxDepth {
			return nil, malformed("The request nests elements more than %d deep.", maxDepth)
		}
	case xml.EndElement:
		d.depth--
	case xml.Directive:
		return nil, malformed("Document type declarations are not allowed in SOAP messages.")
	case xml.CharData:
		// Valid until the next call: callers that keep it copy it.
		return t, nil
	}
	return t, nil
}

// next returns the next token, where the end of the document is an error (it is inside an element).
func (d *decoder) next() (xml.Token, error) {
	t, err := d.token()
	if err == io.EOF {
		return nil, malformed("The request ends before the SOAP envelope is complete.")
	}
	return t, err
}

// skip consumes the rest of the element whose start was just read.
func (d *decoder) skip() error {
	target := d.depth - 1
	for d.depth > target {
		if _, err := d.next(); err != nil {
			return err
		}
	}
	return nil
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// children calls fn for each child element of the element whose start was just read; fn must
// consume the child (read its content or skip it). Text other than whitespace between the children
// is an error.
func (d *decoder) children(parent string, fn func(xml.StartElement) error) error {
	for {
		t, err := d.next()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		case xml.CharData:
			if !isSpace(t) {
				return malformed("Unexpected text in %s.", parent)
			}
		}
	}
}

func (d *decoder) envelope() (*request, error) {
	var start xml.StartElement
prolog:
	for {
		t, err := d.token()
		if err == io.EOF {
			return nil, malformed("The request is empty: send a SOAP 1.2 envelope.")
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			start = t
			break prolog
		case xml.CharData:
			if !isSpace(t) {
				return nil, malformed("The request is not XML: send a SOAP 1.2 envelope.")
			}
		}
	}
	if start.Name.Local != "Envelope" {
		return nil, malformed("The document is a <%s>, not a SOAP Envelope.", start.Name.Local)
	}
	req := &request{}
	switch start.Name.Space {
	case nsSOAP12:
		req.version = soap12
	case nsSOAP11:
		req.version = soap11
	default:
		return nil, versionMismatch(start.Name.Space)
	}
	ns := start.Name.Space
	var header, body bool
	fail := func(err error) (*request, error) { return req, err }
	err := d.children("the Envelope", func(t xml.StartElement) error {
		if t.Name.Space != ns {
			return malformed("Unexpected element <%s> in the Envelope: it holds a Header and a Body.", t.Name.Local)
		}
		switch {
		case t.Name.Local == "Header" && !header && !body:
			header = true
			return d.header(req)
		case t.Name.Local == "Body" && !body:
			body = true
			return d.body(req)
		}
		return malformed("Unexpected element <%s> in the Envelope: it holds one optional Header, then one Body.", t.Name.Local)
	})
	if err != nil {
		return fail(err)
	}
	if !body {
		return fail(malformed("The Envelope has no Body."))
	}
	// Only comments and processing instructions may follow the envelope.
	for {
		t, err := d.token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			return fail(malformed("Unexpected element <%s> after the Envelope.", t.Name.Local))
		case xml.CharData:
			if !isSpace(t) {
				return fail(malformed("Unexpected text after the Envelope."))
			}
		}
	}
	if d.unsupported != nil {
		return fail(d.unsupported)
	}
	if req.op == opConnectivityTest && !req.hasEchoBack {
		// The schema requires echoBack (minOccurs 1, nillable): an absent one is the sender's error.
		return fail(malformed("<connectivityTest> has no <echoBack> element: send the text to echo (it may be empty, or xsi:nil)."))
	}
	return req, nil
}

func isWSSE(space string) bool { return space == nsWSSE10 || space == nsWSSE11 }

// header reads the WS-Security UsernameToken and ignores the other header blocks.
func (d *decoder) header(req *request) error {
	return d.children("the Header", func(t xml.StartElement) error {
		if !isWSSE(t.Name.Space) || t.Name.Local != "Security" {
			return d.skip()
		}
		return d.children("the Security header", func(t xml.StartElement) error {
			if !isWSSE(t.Name.Space) || t.Name.Local != "UsernameToken" || req.token != nil {
				return d.skip()
			}
			tok := &usernameToken{}
			req.token = tok
			return d.children("the UsernameToken", func(t xml.StartElement) error {
				if !isWSSE(t.Name.Space) {
					return d.skip()
				}
				var err error
				switch t.Name.Local {
				case "Username":
					tok.username, err = d.field(t, "Username")
				case "Password":
					for _, a := range t.Attr {
						if a.Name.Local == "Type" && a.Name.Space == "" {
							tok.passwordType = strings.TrimSpace(a.Value)
						}
					}
					tok.password, err = d.field(t, "Password")
				default:
					err = d.skip() // Nonce, Created
				}
				return err
			})
		})
	})
}

// body reads the one operation element of the Body.
func (d *decoder) body(req *request) error {
	seen := false
	err := d.children("the Body", func(t xml.StartElement) error {
		if seen {
			return malformed("The Body holds more than one element: send one operation per request.")
		}
		seen = true
		if t.Name.Space == Namespace && (t.Name.Local == opConnectivityTest || t.Name.Local == opSubmitSingleMessage) {
			req.op = t.Name.Local
			return d.operation(req)
		}
		d.unsupported = unsupportedFault(t.Name.Space, t.Name.Local)
		return d.skip()
	})
	if err != nil {
		return err
	}
	if !seen {
		return malformed("The Body is empty: it must hold one operation element.")
	}
	return nil
}

// operation reads the parameters of req.op. The schema qualifies them (elementFormDefault
// qualified), but many hand-written clients send them without a namespace: both are accepted.
func (d *decoder) operation(req *request) error {
	seen := map[string]bool{}
	err := d.children("<"+req.op+">", func(t xml.StartElement) error {
		if t.Name.Space != Namespace && t.Name.Space != "" {
			return d.skip()
		}
		name := t.Name.Local
		switch req.op + "/" + name {
		case "connectivityTest/echoBack", "submitSingleMessage/username", "submitSingleMessage/password",
			"submitSingleMessage/facilityID", "submitSingleMessage/hl7Message":
		default:
			return d.skip()
		}
		if seen[name] {
			return malformed("<%s> appears more than once in <%s>.", name, req.op)
		}
		seen[name] = true
		var err error
		switch name {
		case "echoBack":
			var b []byte
			b, err = d.text(t, name, d.maxPayload, true)
			req.echoBack = string(b)
		case "username":
			req.username, err = d.field(t, name)
		case "password":
			req.password, err = d.field(t, name)
		case "facilityID":
			req.facilityID, err = d.field(t, name)
		case "hl7Message":
			req.hl7Message, err = d.text(t, name, d.maxPayload, true)
		}
		return err
	})
	req.hasEchoBack = seen["echoBack"]
	return err
}

// field reads a short text field (credentials, facility ID), trimmed of surrounding whitespace.
func (d *decoder) field(start xml.StartElement, name string) (string, error) {
	b, err := d.text(start, name, maxField, false)
	return strings.TrimSpace(string(b)), err
}

// text reads the character content of the element whose start was just read: text, CDATA and
// character references, in any mix. An element inside it is an error (an HL7 payload with a
// literal "<" must be escaped or put in CDATA). An xsi:nil element is empty.
func (d *decoder) text(start xml.StartElement, name string, limit int, payload bool) ([]byte, error) {
	for _, a := range start.Attr {
		if a.Name.Space == nsXSI && a.Name.Local == "nil" && (a.Value == "true" || a.Value == "1") {
			if err := d.skip(); err != nil {
				return nil, err
			}
			return nil, nil
		}
	}
	var b []byte
	for {
		t, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(b)+len(t) > limit {
				if payload {
					return nil, tooLargeFault(fmt.Sprintf(
						"<%s> holds more than %d bytes, the most this registry accepts in one request. Split the messages over several requests.",
						name, limit))
				}
				return nil, malformed("<%s> is longer than %d bytes.", name, limit)
			}
			b = append(b, t...)
		case xml.StartElement:
			return nil, malformed("<%s> must hold text, not an element <%s>: escape the payload or put it in a CDATA section.", name, t.Name.Local)
		case xml.EndElement:
			return b, nil
		}
	}
}
