package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store/storetest"
)

var demoSOAPRE = regexp.MustCompile(`SOAP: \S+\s+username (\S+)\s+password (\S+)`)

// TestDemoSOAPPasswordKept: two starts of `serve --demo` on one data dir print the same SOAP
// password, kept in the data dir with mode 0600, and it authenticates after the restart too, so
// that a SOAP client set up after the first `make run` keeps working. It never reaches the log.
func TestDemoSOAPPasswordKept(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("VAXGATE_DATABASE_URL", storetest.NewURL(t))
	t.Setenv("VAXGATE_DATA_DIR", dataDir)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "debug")
	gen := vxugen.New(vxugen.Options{Seed: 9, Facility: "X68", ControlIDs: "DEMO-PW", Now: time.Now()})

	// start runs serve --demo, submits a message over SOAP with the password a client was set up
	// with (the printed one when empty), stops, and returns the printed credentials.
	start := func(clientPassword string) (username, password string) {
		t.Helper()
		srv := runServe(t, "serve", "--demo")
		m := demoSOAPRE.FindStringSubmatch(srv.stdout.String())
		if m == nil {
			t.Fatalf("serve --demo printed no SOAP credentials:\n%s", srv.stdout.String())
		}
		username, password = m[1], m[2]
		if clientPassword == "" {
			clientPassword = password
		}
		if code, body := submitSOAP(t, srv.http, username, clientPassword, "X68", gen.Next()); code != http.StatusOK || !strings.Contains(body, "MSA|A") {
			t.Errorf("submitSingleMessage with the password printed at the first start: %d\n%s", code, body)
		}
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(srv.stderr.String(), password) {
			t.Error("the demo SOAP password appears in the log")
		}
		return username, password
	}
	user, first := start("")
	_, second := start(first)
	if second != first {
		t.Errorf("the restart printed another SOAP password (%d characters, the first %d): clients set up after the first start break", len(second), len(first))
	}
	file := filepath.Join(dataDir, demoSOAPPasswordName)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("the demo SOAP password is not kept in the data dir: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
	}
	if kept, _ := os.ReadFile(file); strings.TrimSpace(string(kept)) != first {
		t.Errorf("%s does not hold the printed password", file)
	}
	if user != demoSOAPUser {
		t.Errorf("demo SOAP username %q, want %q", user, demoSOAPUser)
	}
}

// submitSOAP sends msg with submitSingleMessage (SOAP 1.2, the CDC WSDL) and returns the HTTP
// status and the response body.
func submitSOAP(t *testing.T, httpAddr, username, password, facility string, msg []byte) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:iis="urn:cdc:iisb:2011"><soap:Body><iis:submitSingleMessage>`+
		`<iis:username>%s</iis:username><iis:password>%s</iis:password><iis:facilityID>%s</iis:facilityID>`+
		`<iis:hl7Message><![CDATA[%s]]></iis:hl7Message></iis:submitSingleMessage></soap:Body></soap:Envelope>`, username, password, facility, msg)
	resp, err := http.Post("http://"+httpAddr+"/soap", "application/soap+xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
