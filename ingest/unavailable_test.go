package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxgate/vaxgate/ingest"
)

// unavailableCommitter is a store whose database is down: every record waits and gets
// ErrUnavailable. It counts what it is asked to commit.
type unavailableCommitter struct {
	mu      sync.Mutex
	commits int
}

type failedPending struct{ err error }

func (p failedPending) Wait(context.Context) ([]byte, error) { return nil, p.err }

func (c *unavailableCommitter) Commit(*ingest.Record) ingest.Pending {
	c.mu.Lock()
	c.commits++
	c.mu.Unlock()
	return failedPending{fmt.Errorf("store: %w", ingest.ErrUnavailable)}
}

// While the database is unavailable the pipeline answers nothing (no AR 207 "send it again
// later"), says so with ErrUnavailable, and archives nothing (the database is what failed).
func TestPipelineUnavailableHasNoACK(t *testing.T) {
	c := &unavailableCommitter{}
	p, err := ingest.NewPipeline(ingest.Options{Committer: c, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	s := &ingest.Sender{SiteCode: "S", Status: ingest.SiteProduction, Facilities: []string{"X68"}}
	msg := []byte("MSH|^~\\&|EHR|X68|IIS|STATE|20240101120000||VXU^V04^VXU_V04|U-1|P|2.5.1\rPID|1||123^^^X68^MR||DOE^JANE||20200101|F\r")
	a, err := p.Submit(context.Background(), ingest.Envelope{Transport: ingest.TransportMLLP, Sender: s, Payload: msg})
	if a != nil || !errors.Is(err, ingest.ErrUnavailable) {
		t.Errorf("Submit = %q, %v; want no ACK and ErrUnavailable", a, err)
	}
	if c.commits != 1 {
		t.Errorf("%d records committed; want 1 (the message; no archive entry of a failure)", c.commits)
	}
}
