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

// WSDL returns the service description with serviceURL as the SOAP 1.2 endpoint address.
func WSDL(serviceURL string) []byte {
	var loc bytes.Buffer
	_ = xml.EscapeText(&loc, []byte(serviceURL)) // a bytes.Buffer does not fail
	return bytes.Replace(wsdlTemplate, wsdlPlaceholder, loc.Bytes(), 1)
}
