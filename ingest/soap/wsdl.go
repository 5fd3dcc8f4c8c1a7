package soap

import (
	"bytes"
	_ "embed" // the WSDL text
	"encoding/xml"
)

// wsdlTemplate is vaxgate's WSDL of the CDC IIS 2011 service; {{SERVICE_URL}} stands for the
// service address.
//
//go:embed iis-2011.wsdl
var wsdlTemplate []byte

var wsdlPlaceholder = []byte("{{SERVICE_URL}}")

// WSDL returns the service description with serviceURL as the SOAP 1.2 endpoint address: the CDC's
// contract, whose only binding is SOAP 1.2 (served at ?wsdl).
func WSDL(serviceURL string) []byte {
	var loc bytes.Buffer
	_ = xml.EscapeText(&loc, []byte(serviceURL)) // a bytes.Buffer does not fail
	return bytes.Replace(wsdlTemplate, wsdlPlaceholder, loc.Bytes(), 1)
}

// soap11Renames turn the SOAP 1.2 binding of the WSDL into the same binding over SOAP 1.1: the
// WSDL 1.1 SOAP binding extensions (namespace .../wsdl/soap/) have the same elements and
// attributes as the SOAP 1.2 ones (.../wsdl/soap12/).
var soap11Renames = [][2]string{
	{`xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"`, `xmlns:soap11="http://schemas.xmlsoap.org/wsdl/soap/"`},
	{`<soap12:`, `<soap11:`},
	{`client_Binding_Soap12`, `client_Binding_Soap11`},
	{`client_Port_Soap12`, `client_Port_Soap11`},
}

// WSDL11 returns the description of the same service over SOAP 1.1 (text/xml), served at
// ?wsdl=1.1 for clients that only speak SOAP 1.1: the same operations, messages and faults, with
// binding client_Binding_Soap11 and port client_Port_Soap11. It is kept out of the main WSDL so
// that a client generated from that one has exactly the CDC's single SOAP 1.2 port.
func WSDL11(serviceURL string) []byte {
	out := WSDL(serviceURL)
	for _, r := range soap11Renames {
		out = bytes.ReplaceAll(out, []byte(r[0]), []byte(r[1]))
	}
	return out
}
