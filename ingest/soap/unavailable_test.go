package soap

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
)

// downSubmitter is a pipeline whose database stayed unavailable past the writer's wait.
type downSubmitter struct{}

func (downSubmitter) Submit(context.Context, ingest.Envelope) ([]byte, error) {
	return nil, fmt.Errorf("ingest: commit message: %w", ingest.ErrUnavailable)
}

// While the database is unavailable a submission is not acknowledged: the WSDL's UnknownFault as
// soap:Receiver, with a Retry-After header and the same hint in its Detail, never an ACK that
// says AR.
func TestUnavailableFaultOverHTTP(t *testing.T) {
	senders := &memSenders{creds: map[string]*ingest.SOAPCredential{
		"u": {Username: "u", PasswordHash: cheapHash(t, "p"), FacilityID: "F",
			Sender: ingest.Sender{CredentialID: 7, SiteCode: "S", Facilities: []string{"F"}}},
	}}
	for _, tt := range []struct {
		name  string
		after time.Duration
		want  string
	}{{"default retry hint", 0, "30"}, {"configured retry hint", 45 * time.Second, "45"}} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHandler(Options{Submitter: downSubmitter{}, Senders: senders, RetryAfter: tt.after})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			for _, v := range []version{soap12, soap11} {
				ct, want := ct12, faultWant{500, "application/soap+xml", "Receiver", "fault", "4"}
				if v == soap11 {
					ct, want = ct11, faultWant{500, "text/xml", "Server", "fault", "4"}
				}
				resp, err := srv.Client().Post(srv.URL, ct, strings.NewReader(submission{v: v, user: "u", pass: "p", facility: "F", payload: escape(vxu("D-1", "F"))}.String()))
				if err != nil {
					t.Fatal(err)
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r := checkFault(t, resp, out, want)
				if got := resp.Header.Get("Retry-After"); got != tt.want || !strings.Contains(r.Detail, "again in "+tt.want+" seconds") {
					t.Errorf("Retry-After %q, detail %q; want %s seconds", got, r.Detail, tt.want)
				}
				if strings.Contains(string(out), "MSA|") {
					t.Errorf("the fault carries an ACK: %s", out)
				}
			}
		})
	}
}
