package soap

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	env12 = `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:iis="urn:cdc:iisb:2011">`
	env11 = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:iis="urn:cdc:iisb:2011">`
	wsse  = `<soap:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">` +
		`<wsse:UsernameToken><wsse:Username>tok-user</wsse:Username>` +
		`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">tok-pass</wsse:Password>` +
		`<wsse:Nonce>abc</wsse:Nonce></wsse:UsernameToken></wsse:Security></soap:Header>`
	msh = `MSH|^~\&amp;|EHR|10144|IIS|X|20250101||VXU^V04^VXU_V04|CTL-1|P|2.5.1`
)

func body12(inner string) string {
	return env12 + `<soap:Body>` + inner + `</soap:Body></soap:Envelope>`
}

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		charset string
		want    request
		tok     *usernameToken
	}{
		{
			name: "connectivity test",
			in:   body12(`<iis:connectivityTest><iis:echoBack>hello &amp; welcome</iis:echoBack></iis:connectivityTest>`),
			want: request{op: opConnectivityTest, echoBack: "hello & welcome"},
		},
		{
			name: "nil echo",
			in: body12(`<iis:connectivityTest><iis:echoBack xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>` +
				`</iis:connectivityTest>`),
			want: request{op: opConnectivityTest},
		},
		{
			name: "submit, qualified fields, escaped payload",
			in: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + body12(`<iis:submitSingleMessage><iis:username> u1 </iis:username>`+
				`<iis:password>p&lt;1</iis:password><iis:facilityID>10144</iis:facilityID><iis:hl7Message>`+msh+`&#xD;PID|1</iis:hl7Message>`+
				`</iis:submitSingleMessage>`),
			want: request{op: opSubmitSingleMessage, username: "u1", password: "p<1", facilityID: "10144",
				hl7Message: []byte("MSH|^~\\&|EHR|10144|IIS|X|20250101||VXU^V04^VXU_V04|CTL-1|P|2.5.1\rPID|1")},
		},
		{
			name: "unqualified fields in default namespace-less children, CDATA payload",
			in: body12(`<submitSingleMessage xmlns="urn:cdc:iisb:2011"><username xmlns="">u2</username><password xmlns="">p2</password>` +
				`<hl7Message xmlns=""><![CDATA[MSH|^~\&|A|B` + "\r\n" + `PID|1]]></hl7Message></submitSingleMessage>`),
			want: request{op: opSubmitSingleMessage, username: "u2", password: "p2",
				hl7Message: []byte("MSH|^~\\&|A|B\nPID|1")},
		},
		{
			name: "WS-Security header, no credentials in the body",
			in:   env12 + wsse + `<soap:Body><iis:submitSingleMessage><iis:facilityID>10144</iis:facilityID><iis:hl7Message>x</iis:hl7Message></iis:submitSingleMessage></soap:Body></soap:Envelope>`,
			want: request{op: opSubmitSingleMessage, facilityID: "10144", hl7Message: []byte("x")},
			tok: &usernameToken{username: "tok-user", password: "tok-pass",
				passwordType: "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"},
		},
		{
			name: "SOAP 1.1",
			in:   env11 + `<soap:Body><iis:connectivityTest><iis:echoBack>x</iis:echoBack></iis:connectivityTest></soap:Body></soap:Envelope>`,
			want: request{version: soap11, op: opConnectivityTest, echoBack: "x"},
		},
		{
			name: "byte order mark, comments, unknown header and fields are ignored",
			in: "\xef\xbb\xbf<?xml version=\"1.0\"?><!-- hi -->" + env12 + `<soap:Header><wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">a</wsa:Action></soap:Header>` +
				`<soap:Body><iis:connectivityTest><iis:extra><x/></iis:extra><iis:echoBack>e</iis:echoBack></iis:connectivityTest></soap:Body></soap:Envelope><!-- bye -->`,
			want: request{op: opConnectivityTest, echoBack: "e"},
		},
		{
			name:    "latin-1 declared",
			in:      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" + body12("<iis:connectivityTest><iis:echoBack>M\xfcller</iis:echoBack></iis:connectivityTest>"),
			want:    request{op: opConnectivityTest, echoBack: "Müller"},
			charset: "",
		},
		{
			name:    "latin-1 from the HTTP charset",
			in:      body12("<iis:connectivityTest><iis:echoBack>M\xfcller</iis:echoBack></iis:connectivityTest>"),
			charset: "iso-8859-1",
			want:    request{op: opConnectivityTest, echoBack: "Müller"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEnvelope(strings.NewReader(tt.in), 1<<20, tt.charset)
			if err != nil {
				t.Fatalf("decodeEnvelope: %v", err)
			}
			if got.version != tt.want.version || got.op != tt.want.op || got.echoBack != tt.want.echoBack ||
				got.username != tt.want.username || got.password != tt.want.password ||
				got.facilityID != tt.want.facilityID || !bytes.Equal(got.hl7Message, tt.want.hl7Message) {
				t.Errorf("decodeEnvelope =\n%+v\nwant\n%+v", *got, tt.want)
			}
			switch {
			case tt.tok == nil && got.token != nil:
				t.Errorf("token = %+v; want none", *got.token)
			case tt.tok != nil && (got.token == nil || *got.token != *tt.tok):
				t.Errorf("token = %+v; want %+v", got.token, *tt.tok)
			}
		})
	}
}

func TestDecodeEnvelopeFaults(t *testing.T) {
	big := strings.Repeat("A", 200)
	tests := []struct {
		name   string
		in     string
		kind   FaultKind
		code   soapCode
		number int
		detail string // substring
	}{
		{"empty", "", UnknownFault, codeSender, CodeMalformedRequest, "empty"},
		{"not xml", "MSH|^~\\&|", UnknownFault, codeSender, CodeMalformedRequest, "well-formed"},
		{"text", "hello", UnknownFault, codeSender, CodeMalformedRequest, "not XML"},
		{"truncated", body12(`<iis:connectivityTest><iis:echoBack>x`)[:60], UnknownFault, codeSender, CodeMalformedRequest, ""},
		{"unclosed", env12 + `<soap:Body><iis:connectivityTest>`, UnknownFault, codeSender, CodeMalformedRequest, "ends before"},
		{"mismatched tags", body12(`<iis:connectivityTest><iis:echoBack>x</iis:echo></iis:connectivityTest>`), UnknownFault, codeSender, CodeMalformedRequest, "well-formed"},
		{"not an envelope", `<foo/>`, UnknownFault, codeSender, CodeMalformedRequest, "not a SOAP Envelope"},
		{"other envelope namespace", `<e:Envelope xmlns:e="urn:x"><e:Body/></e:Envelope>`, "", codeVersionMismatch, 0, "urn:x"},
		{"no body", env12 + `</soap:Envelope>`, UnknownFault, codeSender, CodeMalformedRequest, "no Body"},
		{"empty body", body12(``), UnknownFault, codeSender, CodeMalformedRequest, "Body is empty"},
		{"two operations", body12(`<iis:connectivityTest/><iis:connectivityTest/>`), UnknownFault, codeSender, CodeMalformedRequest, "more than one"},
		{"header after body", env12 + `<soap:Body><iis:connectivityTest/></soap:Body><soap:Header/></soap:Envelope>`, UnknownFault, codeSender, CodeMalformedRequest, "Header"},
		{"element after envelope", body12(`<iis:connectivityTest/>`) + `<x/>`, UnknownFault, codeSender, CodeMalformedRequest, "after the Envelope"},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]>` + body12(`<iis:connectivityTest/>`), UnknownFault, codeSender, CodeMalformedRequest, "Document type"},
		{"unknown entity", body12(`<iis:connectivityTest><iis:echoBack>&xxe;</iis:echoBack></iis:connectivityTest>`), UnknownFault, codeSender, CodeMalformedRequest, "well-formed"},
		{"element in payload", body12(`<iis:submitSingleMessage><iis:hl7Message>MSH<b>x</b></iis:hl7Message></iis:submitSingleMessage>`), UnknownFault, codeSender, CodeMalformedRequest, "CDATA"},
		{"duplicate field", body12(`<iis:submitSingleMessage><iis:username>a</iis:username><iis:username>b</iis:username></iis:submitSingleMessage>`), UnknownFault, codeSender, CodeMalformedRequest, "more than once"},
		{"deep nesting", body12(strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)), UnknownFault, codeSender, CodeMalformedRequest, "deep"},
		{"unknown charset", `<?xml version="1.0" encoding="EBCDIC"?>` + body12(`<iis:connectivityTest/>`), UnknownFault, codeSender, CodeMalformedRequest, "EBCDIC"},
		{"long username", body12(`<iis:submitSingleMessage><iis:username>` + strings.Repeat("u", maxField+1) + `</iis:username></iis:submitSingleMessage>`), UnknownFault, codeSender, CodeMalformedRequest, "longer than"},
		{"payload too large", body12(`<iis:submitSingleMessage><iis:hl7Message>` + big + `</iis:hl7Message></iis:submitSingleMessage>`), MessageTooLargeFault, codeSender, CodeMessageTooLarge, "more than 100 bytes"},
		{"payload too large in pieces", body12(`<iis:submitSingleMessage><iis:hl7Message>` + big[:60] + `<![CDATA[` + big[:60] + `]]></iis:hl7Message></iis:submitSingleMessage>`), MessageTooLargeFault, codeSender, CodeMessageTooLarge, ""},
		{"unknown operation", body12(`<iis:submitBatch><iis:x>1</iis:x></iis:submitBatch>`), UnsupportedOperationFault, codeSender, CodeUnsupportedOperation, "{urn:cdc:iisb:2011}submitBatch"},
		{"2014 operation", body12(`<SubmitSingleMessageRequest xmlns="urn:cdc:iisb:2014"/>`), UnsupportedOperationFault, codeSender, CodeUnsupportedOperation, "urn:cdc:iisb:2014"},
		{"operation without namespace", body12(`<submitSingleMessage/>`), UnsupportedOperationFault, codeSender, CodeUnsupportedOperation, "Operation submitSingleMessage is not supported"},
		{"unknown operation, then malformed", body12(`<iis:submitBatch>`), UnknownFault, codeSender, CodeMalformedRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeEnvelope(strings.NewReader(tt.in), 100, "")
			var f *fault
			if !errors.As(err, &f) {
				t.Fatalf("decodeEnvelope = %+v, %v; want a fault", req, err)
			}
			if f.kind != tt.kind || f.code != tt.code || f.number != tt.number || !strings.Contains(f.detail, tt.detail) {
				t.Errorf("fault = %s %s %d %q; want %s %s %d containing %q", f.kind, f.code, f.number, f.detail,
					tt.kind, tt.code, tt.number, tt.detail)
			}
		})
	}
}

// A body that fails to read is a read error, not a malformed request.
func TestDecodeEnvelopeReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(env12+`<soap:Body>`), &failingReader{boom})
	_, err := decodeEnvelope(r, 100, "")
	var f *fault
	if errors.As(err, &f) || !errors.Is(err, boom) {
		t.Fatalf("decodeEnvelope = %v; want the read error", err)
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

// The MIIS-style request of the shared corpus: credentials only in the WS-Security header.
func TestDecodeEnvelopeMIIS(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "corpus", "soap", "miis_ma_submitSingleMessage_wsse_example.xml")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("shared corpus not present (%s): the MIIS example is checked where ../shared exists", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	req, err := decodeEnvelope(bytes.NewReader(data), DefaultMaxMessageSize, "")
	if err != nil {
		t.Fatalf("decodeEnvelope: %v", err)
	}
	if req.op != opSubmitSingleMessage || req.facilityID != "10144" || req.username != "" || req.password != "" {
		t.Errorf("request = op %q facility %q username %q", req.op, req.facilityID, req.username)
	}
	if req.token == nil || req.token.username != "REDACTED" || req.token.password != "REDACTED" ||
		!strings.HasSuffix(req.token.passwordType, "#PasswordText") {
		t.Errorf("token = %+v", req.token)
	}
	if !bytes.HasPrefix(req.hl7Message, []byte(`MSH|^~\&|EHR|10144|MIIS|`)) || !bytes.Contains(req.hl7Message, []byte("\nRXA|0|1|20150101")) {
		t.Errorf("hl7Message = %.80q", req.hl7Message)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(body12(`<iis:connectivityTest><iis:echoBack>hi</iis:echoBack></iis:connectivityTest>`)), "")
	f.Add([]byte(env12+wsse+`<soap:Body><iis:submitSingleMessage><iis:facilityID>1</iis:facilityID><iis:hl7Message><![CDATA[MSH|^~\&|]]></iis:hl7Message></iis:submitSingleMessage></soap:Body></soap:Envelope>`), "")
	f.Add([]byte(body12(`<iis:submitSingleMessage><iis:username>u</iis:username><iis:password>p</iis:password><iis:hl7Message>`+msh+`</iis:hl7Message></iis:submitSingleMessage>`)), "utf-8")
	f.Add([]byte(env11+`<soap:Body><x:y xmlns:x="urn:x"/></soap:Body></soap:Envelope>`), "")
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"latin1\"?>"+body12("<iis:connectivityTest><iis:echoBack>\xe9</iis:echoBack></iis:connectivityTest>")), "latin1")
	f.Add([]byte(`<!DOCTYPE a><a/>`), "")
	const limit = 256
	f.Fuzz(func(t *testing.T, data []byte, charset string) {
		req, err := decodeEnvelope(bytes.NewReader(data), limit, charset)
		if err != nil {
			var fl *fault
			if !errors.As(err, &fl) {
				t.Fatalf("error is not a fault: %v", err)
			}
			if fl.detail == "" || fl.outcome == "" {
				t.Fatalf("fault without detail or outcome: %+v", fl)
			}
			// Every fault can be encoded, in both versions.
			for _, v := range []version{soap11, soap12} {
				if out := encodeFault(v, fl); !bytes.Contains(out, []byte("Fault>")) {
					t.Fatalf("encodeFault: %s", out)
				}
			}
			return
		}
		if req.op != opConnectivityTest && req.op != opSubmitSingleMessage {
			t.Fatalf("op = %q", req.op)
		}
		if len(req.hl7Message) > limit || len(req.echoBack) > limit {
			t.Fatalf("payload over the limit: %d, %d", len(req.hl7Message), len(req.echoBack))
		}
		if len(req.username) > maxField || len(req.password) > maxField || len(req.facilityID) > maxField {
			t.Fatalf("field over the limit")
		}
		// What was decoded encodes back into a well-formed response.
		out := encodeResponse(req.version, req.op, req.echoBack+string(req.hl7Message))
		if _, err := decodeResponse(out); err != nil {
			t.Fatalf("response does not decode: %v\n%s", err, out)
		}
	})
}
