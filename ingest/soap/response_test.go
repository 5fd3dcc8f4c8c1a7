package soap

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

// response is a SOAP answer as a client reads it, checked against the names and namespaces of the
// WSDL: either an operation response with its return, or a fault with its CDC detail.
type response struct {
	EnvelopeNS string
	// success
	Element xml.Name // {urn:cdc:iisb:2011}connectivityTestResponse, ...
	Return  string
	// fault
	Fault       bool
	SOAPCode    string // SOAP 1.2 Code/Value or 1.1 faultcode, prefix removed
	ReasonText  string
	DetailEl    xml.Name // {urn:cdc:iisb:2011}SecurityFault, ...
	Code        string
	Reason      string
	Detail      string
	DetailCount int
}

type xmlEnvelope struct {
	XMLName xml.Name
	Body    struct {
		XMLName xml.Name
		Content []xmlAny `xml:",any"`
	} `xml:"Body"`
}

type xmlAny struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []xmlAny   `xml:",any"`
}

func (a *xmlAny) child(space, local string) *xmlAny {
	for i := range a.Children {
		if a.Children[i].XMLName.Local == local && a.Children[i].XMLName.Space == space {
			return &a.Children[i]
		}
	}
	return nil
}

// decodeResponse parses a response envelope strictly: the envelope and body must be SOAP, the
// operation response and the fault detail must be elements of the WSDL's namespace, with their
// children qualified as the schema says (elementFormDefault="qualified").
func decodeResponse(data []byte) (*response, error) {
	var env xmlEnvelope
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(&env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	ns := env.XMLName.Space
	if env.XMLName.Local != "Envelope" || (ns != nsSOAP12 && ns != nsSOAP11) {
		return nil, fmt.Errorf("root is %v, not a SOAP envelope", env.XMLName)
	}
	if env.Body.XMLName.Space != ns {
		return nil, fmt.Errorf("body is %v", env.Body.XMLName)
	}
	if len(env.Body.Content) != 1 {
		return nil, fmt.Errorf("body holds %d elements; want 1", len(env.Body.Content))
	}
	r := &response{EnvelopeNS: ns}
	el := env.Body.Content[0]
	if el.XMLName.Space == ns && el.XMLName.Local == "Fault" {
		r.Fault = true
		var detail *xmlAny
		if ns == nsSOAP12 {
			code := el.child(ns, "Code")
			if code == nil || code.child(ns, "Value") == nil {
				return nil, fmt.Errorf("fault without Code/Value")
			}
			r.SOAPCode = code.child(ns, "Value").Text
			reason := el.child(ns, "Reason")
			if reason == nil || reason.child(ns, "Text") == nil {
				return nil, fmt.Errorf("fault without Reason/Text")
			}
			r.ReasonText = reason.child(ns, "Text").Text
			detail = el.child(ns, "Detail")
		} else {
			fc := el.child("", "faultcode")
			fs := el.child("", "faultstring")
			if fc == nil || fs == nil {
				return nil, fmt.Errorf("SOAP 1.1 fault without faultcode/faultstring")
			}
			r.SOAPCode, r.ReasonText = fc.Text, fs.Text
			detail = el.child("", "detail")
		}
		if i := strings.IndexByte(r.SOAPCode, ':'); i >= 0 {
			r.SOAPCode = r.SOAPCode[i+1:]
		}
		if detail != nil {
			r.DetailCount = len(detail.Children)
			if len(detail.Children) > 0 {
				d := detail.Children[0]
				r.DetailEl = d.XMLName
				for _, c := range d.Children {
					if c.XMLName.Space != Namespace {
						return nil, fmt.Errorf("fault detail child %v is not in %s", c.XMLName, Namespace)
					}
				}
				if c := d.child(Namespace, "Code"); c != nil {
					r.Code = c.Text
				}
				if c := d.child(Namespace, "Reason"); c != nil {
					r.Reason = c.Text
				}
				if c := d.child(Namespace, "Detail"); c != nil {
					r.Detail = c.Text
				}
			}
		}
		return r, nil
	}
	r.Element = el.XMLName
	ret := el.child(Namespace, "return")
	if ret == nil {
		return nil, fmt.Errorf("%v has no {%s}return", el.XMLName, Namespace)
	}
	r.Return = ret.Text
	return r, nil
}

func TestEncodeFault(t *testing.T) {
	tests := []struct {
		name   string
		v      version
		f      *fault
		status int
		code   string
		el     string
		number string
	}{
		{"security 1.2", soap12, securityFault(authWrongPassword), 400, "Sender", "SecurityFault", "60"},
		{"too large 1.2", soap12, tooLargeFault("big"), 400, "Sender", "MessageTooLargeFault", "30"},
		{"unsupported 1.2", soap12, unsupportedFault("urn:x", "op"), 400, "Sender", "UnsupportedOperationFault", "50"},
		{"internal 1.2", soap12, internalFault(context.Background()), 500, "Receiver", "fault", "3"},
		{"malformed 1.2", soap12, malformed("bad"), 400, "Sender", "fault", "2"},
		{"version mismatch", soap12, versionMismatch("urn:x"), 500, "VersionMismatch", "", ""},
		{"security 1.1", soap11, securityFault(authWrongPassword), 500, "Client", "SecurityFault", "60"},
		{"internal 1.1", soap11, internalFault(context.Background()), 500, "Server", "fault", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := encodeFault(tt.v, tt.f)
			r, err := decodeResponse(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := tt.f.status(tt.v); got != tt.status {
				t.Errorf("status = %d; want %d", got, tt.status)
			}
			if !r.Fault || r.SOAPCode != tt.code || r.Code != tt.number || r.ReasonText == "" {
				t.Errorf("fault = %+v; want code %s number %s", r, tt.code, tt.number)
			}
			if tt.el == "" {
				if r.DetailCount != 0 {
					t.Errorf("detail present: %+v", r)
				}
				return
			}
			if r.DetailEl != (xml.Name{Space: Namespace, Local: tt.el}) || r.Reason != tt.f.reason || r.Detail != tt.f.detail {
				t.Errorf("detail = %v %q %q; want {%s}%s %q %q", r.DetailEl, r.Reason, r.Detail, Namespace, tt.el, tt.f.reason, tt.f.detail)
			}
		})
	}
}

// The ACK's CR segment separators must survive XML: they are written as character references.
func TestEncodeResponseKeepsCR(t *testing.T) {
	ack := "MSH|^~\\&|IIS|X\rMSA|AA|1\r"
	out := encodeResponse(soap12, opSubmitSingleMessage, ack)
	if !bytes.Contains(out, []byte(`MSH|^~\&amp;|IIS|X&#xD;MSA|AA|1&#xD;`)) {
		t.Errorf("response = %s", out)
	}
	r, err := decodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Return != ack || r.Element != (xml.Name{Space: Namespace, Local: "submitSingleMessageResponse"}) {
		t.Errorf("response = %+v", r)
	}
}
