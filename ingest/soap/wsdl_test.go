package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	nsWSDL     = "http://schemas.xmlsoap.org/wsdl/"
	nsWSDLSOAP = "http://schemas.xmlsoap.org/wsdl/soap12/"
	nsXSD      = "http://www.w3.org/2001/XMLSchema"
	nsWSAW     = "http://www.w3.org/2006/05/addressing/wsdl"
)

type wsdlDefinitions struct {
	XMLName         xml.Name
	Attrs           []xml.Attr `xml:",any,attr"`
	TargetNamespace string     `xml:"targetNamespace,attr"`
	Types           struct {
		Schemas []xsdSchema `xml:"http://www.w3.org/2001/XMLSchema schema"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ types"`
	Messages []struct {
		Name  string `xml:"name,attr"`
		Parts []struct {
			Name    string `xml:"name,attr"`
			Element string `xml:"element,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ part"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ message"`
	PortTypes []struct {
		Name       string `xml:"name,attr"`
		Operations []struct {
			Name   string    `xml:"name,attr"`
			Input  wsdlParam `xml:"http://schemas.xmlsoap.org/wsdl/ input"`
			Output wsdlParam `xml:"http://schemas.xmlsoap.org/wsdl/ output"`
			Faults []struct {
				Name    string `xml:"name,attr"`
				Message string `xml:"message,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/ fault"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ operation"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ portType"`
	Bindings []struct {
		Name        string `xml:"name,attr"`
		Type        string `xml:"type,attr"`
		SOAPBinding struct {
			Style     string `xml:"style,attr"`
			Transport string `xml:"transport,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ binding"`
		Operations []struct {
			Name   string `xml:"name,attr"`
			SOAPOp struct {
				Action string `xml:"soapAction,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ operation"`
			Input  wsdlBody `xml:"http://schemas.xmlsoap.org/wsdl/ input"`
			Output wsdlBody `xml:"http://schemas.xmlsoap.org/wsdl/ output"`
			Faults []struct {
				Name      string `xml:"name,attr"`
				SOAPFault struct {
					Name string `xml:"name,attr"`
					Use  string `xml:"use,attr"`
				} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ fault"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/ fault"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ operation"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ binding"`
	Services []struct {
		Name  string `xml:"name,attr"`
		Ports []struct {
			Name    string `xml:"name,attr"`
			Binding string `xml:"binding,attr"`
			Address struct {
				Location string `xml:"location,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ address"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ port"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/ service"`
}

type wsdlParam struct {
	Message string `xml:"message,attr"`
	Action  string `xml:"http://www.w3.org/2006/05/addressing/wsdl Action,attr"`
}

type wsdlBody struct {
	Body struct {
		Use string `xml:"use,attr"`
	} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ body"`
}

type xsdSchema struct {
	Attrs              []xml.Attr `xml:",any,attr"`
	TargetNamespace    string     `xml:"targetNamespace,attr"`
	ElementFormDefault string     `xml:"elementFormDefault,attr"`
	Imports            []struct {
		Namespace string `xml:"namespace,attr"`
	} `xml:"http://www.w3.org/2001/XMLSchema import"`
	Elements []struct {
		Name string `xml:"name,attr"`
		Type string `xml:"type,attr"`
	} `xml:"http://www.w3.org/2001/XMLSchema element"`
	ComplexTypes []struct {
		Name     string `xml:"name,attr"`
		Sequence struct {
			Elements []struct {
				Name      string `xml:"name,attr"`
				Type      string `xml:"type,attr"`
				MinOccurs string `xml:"minOccurs,attr"`
				MaxOccurs string `xml:"maxOccurs,attr"`
				Nillable  string `xml:"nillable,attr"`
			} `xml:"http://www.w3.org/2001/XMLSchema element"`
		} `xml:"http://www.w3.org/2001/XMLSchema sequence"`
	} `xml:"http://www.w3.org/2001/XMLSchema complexType"`
}

// prefixes maps the namespace prefixes declared in attrs.
func prefixes(m map[string]string, attrs []xml.Attr) map[string]string {
	for _, a := range attrs {
		if a.Name.Space == "xmlns" {
			m[a.Name.Local] = a.Value
		}
	}
	return m
}

// qname resolves a prefixed name ("tns:x") to "{namespace}x".
func qname(ns map[string]string, s string) string {
	prefix, local, ok := strings.Cut(s, ":")
	if !ok {
		return "{" + ns[""] + "}" + s
	}
	return "{" + ns[prefix] + "}" + local
}

func or1(s string) string {
	if s == "" {
		return "1"
	}
	return s
}

// describe flattens a WSDL (and its schema, inline or in the imported file xsdPath) into sorted
// facts that a client generator depends on. The service address is left out.
func describe(wsdl []byte, xsdPath string) ([]string, error) {
	var d wsdlDefinitions
	if err := xml.Unmarshal(wsdl, &d); err != nil {
		return nil, fmt.Errorf("parse WSDL: %w", err)
	}
	if d.XMLName.Space != nsWSDL || d.XMLName.Local != "definitions" {
		return nil, fmt.Errorf("root element is %v", d.XMLName)
	}
	ns := prefixes(map[string]string{}, d.Attrs)
	var facts []string
	add := func(format string, args ...any) { facts = append(facts, fmt.Sprintf(format, args...)) }
	add("targetNamespace %s", d.TargetNamespace)
	for _, m := range d.Messages {
		for _, p := range m.Parts {
			add("message %s part %s element %s", m.Name, p.Name, qname(ns, p.Element))
		}
	}
	for _, pt := range d.PortTypes {
		for _, op := range pt.Operations {
			add("portType %s operation %s input %s action %s", pt.Name, op.Name, qname(ns, op.Input.Message), op.Input.Action)
			add("portType %s operation %s output %s action %s", pt.Name, op.Name, qname(ns, op.Output.Message), op.Output.Action)
			for _, f := range op.Faults {
				add("portType %s operation %s fault %s message %s", pt.Name, op.Name, f.Name, qname(ns, f.Message))
			}
		}
	}
	for _, b := range d.Bindings {
		add("binding %s type %s style %s transport %s", b.Name, qname(ns, b.Type), b.SOAPBinding.Style, b.SOAPBinding.Transport)
		for _, op := range b.Operations {
			add("binding %s operation %s soapAction %s input %s output %s", b.Name, op.Name, op.SOAPOp.Action, op.Input.Body.Use, op.Output.Body.Use)
			for _, f := range op.Faults {
				add("binding %s operation %s fault %s soap12:fault %s %s", b.Name, op.Name, f.Name, f.SOAPFault.Name, f.SOAPFault.Use)
			}
		}
	}
	for _, s := range d.Services {
		for _, p := range s.Ports {
			add("service %s port %s binding %s", s.Name, p.Name, qname(ns, p.Binding))
		}
	}

	schemas := d.Types.Schemas
	var schemaNS map[string]string
	if len(schemas) == 1 && len(schemas[0].Elements) == 0 && len(schemas[0].Imports) == 1 && xsdPath != "" {
		// The CDC's WSDL imports its schema from a separate file.
		data, err := os.ReadFile(xsdPath)
		if err != nil {
			return nil, fmt.Errorf("read schema: %w", err)
		}
		var s xsdSchema
		if err := xml.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("parse schema: %w", err)
		}
		schemas = []xsdSchema{s}
		schemaNS = prefixes(map[string]string{}, s.Attrs)
	}
	for _, s := range schemas {
		sns := schemaNS
		if sns == nil {
			sns = prefixes(prefixes(map[string]string{}, d.Attrs), s.Attrs)
		}
		add("schema %s elementFormDefault %s", s.TargetNamespace, s.ElementFormDefault)
		for _, e := range s.Elements {
			add("element {%s}%s type %s", s.TargetNamespace, e.Name, qname(sns, e.Type))
		}
		for _, ct := range s.ComplexTypes {
			for i, e := range ct.Sequence.Elements {
				add("type {%s}%s %d element %s type %s occurs %s..%s nillable %s", s.TargetNamespace, ct.Name, i, e.Name,
					qname(sns, e.Type), or1(e.MinOccurs), or1(e.MaxOccurs), e.Nillable)
			}
		}
	}
	slices.Sort(facts)
	return facts, nil
}

// The WSDL served is vaxgate's own text, but a client generated from it must be the client the
// CDC's WSDL generates: same namespace, messages, elements, operations, actions, faults, binding,
// service and port.
func TestWSDLMatchesCDC(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "wsdl")
	cdc, err := os.ReadFile(filepath.Join(dir, "cdc-iis-2011.wsdl"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("the CDC WSDL is not present (%s): the comparison runs where ../shared exists", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	want, err := describe(cdc, filepath.Join(dir, "cdc-iis-2011.xsd"))
	if err != nil {
		t.Fatalf("CDC WSDL: %v", err)
	}
	got, err := describe(WSDL("https://iis.example.org/soap"), "")
	if err != nil {
		t.Fatalf("vaxgate WSDL: %v", err)
	}
	for _, f := range want {
		if !slices.Contains(got, f) {
			t.Errorf("vaxgate's WSDL lacks: %s", f)
		}
	}
	for _, f := range got {
		if !slices.Contains(want, f) {
			t.Errorf("vaxgate's WSDL has, the CDC's not: %s", f)
		}
	}
	if len(want) < 55 {
		t.Errorf("only %d facts compared: the description misses parts of the WSDL", len(want))
	}
}

func TestWSDLServiceAddress(t *testing.T) {
	for _, loc := range []string{"https://iis.example.org/soap", `http://h/soap?a=1&b="2"`} {
		var d wsdlDefinitions
		if err := xml.Unmarshal(WSDL(loc), &d); err != nil {
			t.Fatalf("WSDL(%q) is not well-formed: %v", loc, err)
		}
		if got := d.Services[0].Ports[0].Address.Location; got != loc {
			t.Errorf("location = %q; want %q", got, loc)
		}
	}
}

// The SOAP 1.1 description (?wsdl=1.1) declares the same service over SOAP 1.1: the same port
// type, messages and schema as the CDC contract, and a complete SOAP 1.1 binding and port.
func TestWSDL11(t *testing.T) {
	const nsWSDLSOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
	loc := "https://iis.example.org/soap"
	doc := WSDL11(loc)
	if bytes.Contains(doc, []byte("soap12")) || bytes.Contains(doc, []byte(nsWSDLSOAP)) {
		t.Fatalf("the SOAP 1.1 description still names SOAP 1.2")
	}
	var d struct {
		Bindings []struct {
			Name        string `xml:"name,attr"`
			Type        string `xml:"type,attr"`
			SOAPBinding struct {
				Style     string `xml:"style,attr"`
				Transport string `xml:"transport,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ binding"`
			Operations []struct {
				Name   string `xml:"name,attr"`
				SOAPOp struct {
					Action string `xml:"soapAction,attr"`
				} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ operation"`
				Input struct {
					Body struct {
						Use string `xml:"use,attr"`
					} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ body"`
				} `xml:"http://schemas.xmlsoap.org/wsdl/ input"`
				Faults []struct {
					Name      string `xml:"name,attr"`
					SOAPFault struct {
						Name string `xml:"name,attr"`
						Use  string `xml:"use,attr"`
					} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ fault"`
				} `xml:"http://schemas.xmlsoap.org/wsdl/ fault"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/ operation"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ binding"`
		Services []struct {
			Name  string `xml:"name,attr"`
			Ports []struct {
				Name    string `xml:"name,attr"`
				Binding string `xml:"binding,attr"`
				Address struct {
					Location string `xml:"location,attr"`
				} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ address"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/ port"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ service"`
	}
	if err := xml.Unmarshal(doc, &d); err != nil {
		t.Fatalf("SOAP 1.1 WSDL does not parse: %v", err)
	}
	if len(d.Bindings) != 1 || d.Bindings[0].Name != "client_Binding_Soap11" || d.Bindings[0].SOAPBinding.Style != "document" ||
		d.Bindings[0].SOAPBinding.Transport != "http://schemas.xmlsoap.org/soap/http" || len(d.Bindings[0].Operations) != 2 {
		t.Fatalf("bindings = %+v", d.Bindings)
	}
	for _, op := range d.Bindings[0].Operations {
		if op.SOAPOp.Action != "urn:cdc:iisb:2011:"+op.Name || op.Input.Body.Use != "literal" || len(op.Faults) < 2 {
			t.Errorf("operation %+v", op)
		}
		for _, f := range op.Faults {
			if f.SOAPFault.Name != f.Name || f.SOAPFault.Use != "literal" {
				t.Errorf("operation %s fault %+v", op.Name, f)
			}
		}
	}
	if len(d.Services) != 1 || len(d.Services[0].Ports) != 1 || d.Services[0].Ports[0].Name != "client_Port_Soap11" ||
		d.Services[0].Ports[0].Binding != "tns:client_Binding_Soap11" || d.Services[0].Ports[0].Address.Location != loc {
		t.Errorf("services = %+v", d.Services)
	}
	// Everything else is the CDC contract: the facts that do not name a binding or a port.
	contract := func(doc []byte) []string {
		facts, err := describe(doc, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range facts {
			if !strings.HasPrefix(f, "binding ") && !strings.HasPrefix(f, "service ") {
				out = append(out, f)
			}
		}
		return out
	}
	if a, b := contract(doc), contract(WSDL(loc)); !slices.Equal(a, b) {
		t.Errorf("the SOAP 1.1 description's contract differs:\n%v\n%v", a, b)
	}
}

// The typed faults' Reason values are fixed in the schema, as in the CDC's 2011 WSDL that the NIST
// tool uses, and equal to what the faults carry.
func TestWSDLFixedReasons(t *testing.T) {
	doc := string(WSDL("x"))
	for typ, reason := range map[string]string{
		"SecurityFault2011Type": ReasonSecurity, "MessageTooLargeFault2011Type": ReasonMessageTooLarge,
		"UnsupportedOperationFault2011Type": ReasonUnsupportedOperation,
	} {
		i := strings.Index(doc, `<xsd:complexType name="`+typ+`">`)
		j := strings.Index(doc[i:], `</xsd:complexType>`)
		if i < 0 || j < 0 || !strings.Contains(doc[i:i+j], `name="Reason" type="xsd:string" minOccurs="0" nillable="true" fixed="`+reason+`"`) {
			t.Errorf("%s: Reason is not fixed to %q", typ, reason)
		}
	}
	for f, want := range map[*fault]string{
		securityFault(authWrongPassword): ReasonSecurity, tooLargeFault("x"): ReasonMessageTooLarge,
		unsupportedFault("", "x"): ReasonUnsupportedOperation, malformed("x"): ReasonUnknown,
		unavailableFault(time.Second): ReasonUnknown,
	} {
		if f.reason != want {
			t.Errorf("%s fault Reason %q; want %q", f.kind, f.reason, want)
		}
	}
}
