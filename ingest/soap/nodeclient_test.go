package soap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeClientDir is a small npm project whose client.js uses the npm "soap" package (pinned in
// package-lock.json) against the service.
var nodeClientDir = filepath.Join("testdata", "nodeclient")

// nodeClient makes sure the node client's dependencies are installed (npm ci, from the lock file)
// and returns the path of node. It skips only when node or npm are not installed at all.
func nodeClient(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the third-party SOAP client test needs Node.js 20.19+ and npm")
	}
	if _, err := os.Stat(filepath.Join(nodeClientDir, "node_modules", "soap", "package.json")); errors.Is(err, os.ErrNotExist) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm is not installed: the third-party SOAP client test needs Node.js 20.19+ and npm")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = nodeClientDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", nodeClientDir, err, out)
		}
	}
	return node
}

type nodeFault struct {
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Fault   json.RawMessage `json:"fault"`
}

type nodeResult struct {
	Services                []string  `json:"services"`
	Endpoint                string    `json:"endpoint"`
	ConnectivityTest        string    `json:"connectivityTest"`
	SubmitSingleMessage     string    `json:"submitSingleMessage"`
	SecurityFault           nodeFault `json:"securityFault"`
	SubmitWithUsernameToken string    `json:"submitWithUsernameToken"`
	ConnectivityTestSoap11  string    `json:"connectivityTestSoap11"`
}

// A client generated from the served WSDL by a third-party SOAP stack (npm soap) calls both
// operations, with body credentials and with a WS-Security UsernameToken, and gets the fault the
// WSDL declares for a wrong password.
func TestNodeSOAPClient(t *testing.T) {
	node := nodeClient(t)
	e := newEngine(t)
	cfg, err := json.Marshal(map[string]any{
		"wsdl": e.url + "?wsdl", "username": userA, "password": passA, "facilityID": "FAC-A",
		"messages": []string{vxu("NODE-1", "FAC-A"), vxu("NODE-2", "FAC-A")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.js")
	cmd.Dir = nodeClientDir
	cmd.Stdin = bytes.NewReader(cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.js: %v\n%s", err, stderr.String())
	}
	var r nodeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("client output is not JSON: %v\n%s", err, out)
	}

	if len(r.Services) != 1 || r.Services[0] != "client_Service" || r.Endpoint != e.url {
		t.Errorf("generated client: services %v, endpoint %q; want [client_Service] at %q", r.Services, r.Endpoint, e.url)
	}
	if r.ConnectivityTest != "ping from node-soap" || r.ConnectivityTestSoap11 != "ping over SOAP 1.1" {
		t.Errorf("connectivityTest returned %q and %q over SOAP 1.1", r.ConnectivityTest, r.ConnectivityTestSoap11)
	}
	for _, c := range []struct{ name, ret, control string }{
		{"submitSingleMessage", r.SubmitSingleMessage, "NODE-1"},
		{"submitSingleMessage with a UsernameToken", r.SubmitWithUsernameToken, "NODE-2"},
	} {
		as := acks(t, c.ret)
		if len(as) != 1 || as[0].Get("MSA-1") != "AA" || as[0].Get("MSA-2") != c.control {
			t.Errorf("%s returned %q; want one AA for %s", c.name, c.ret, c.control)
			continue
		}
		if n := e.count(t, `SELECT count(*) FROM vaccinations WHERE filler_order_id = $1`, "ORD-"+c.control+"^CLINIC-A"); n != 1 {
			t.Errorf("%s: %d vaccinations stored; want 1", c.name, n)
		}
	}

	// The fault as the client parsed it: SOAP 1.2 Sender, detail {urn:cdc:iisb:2011}SecurityFault.
	f := r.SecurityFault
	if f.Status != 400 {
		t.Errorf("security fault: HTTP %d (%s); want 400", f.Status, f.Message)
	}
	var parsed struct {
		Code struct {
			Value string `json:"Value"`
		} `json:"Code"`
		Detail struct {
			SecurityFault *struct {
				Code   string `json:"Code"`
				Reason string `json:"Reason"`
				Detail string `json:"Detail"`
			} `json:"SecurityFault"`
		} `json:"Detail"`
	}
	if err := json.Unmarshal(f.Fault, &parsed); err != nil {
		t.Fatalf("fault %s: %v", f.Fault, err)
	}
	sf := parsed.Detail.SecurityFault
	if !strings.HasSuffix(parsed.Code.Value, ":Sender") || sf == nil || sf.Code != "60" || sf.Reason != "Security" || sf.Detail == "" {
		t.Errorf("security fault as the client parsed it: %s", f.Fault)
	}
}
