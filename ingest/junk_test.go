package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest/mllp"
)

// junkVXU is vxu_basic.hl7 followed by n junk OBX segments (about 29 bytes each): what a broken
// or hostile sender sends to make one message produce hundreds of thousands of findings.
func junkVXU(t testing.TB, control string, n int) []byte {
	t.Helper()
	base := bytes.ReplaceAll(fixture(t, "vxu_basic.hl7"), []byte("CTRL-0001"), []byte(control))
	var b bytes.Buffer
	b.Grow(len(base) + n*30)
	b.Write(bytes.TrimRight(base, "\r\n"))
	b.WriteByte('\r')
	for i := range n {
		fmt.Fprintf(&b, "OBX|%d|ZZ|JUNK^junk^LN||x\r", i+5)
	}
	return b.Bytes()
}

var moreFindings = regexp.MustCompile(`^(\d+) more findings`)

// TestJunkMessageACKIsBounded (issue 14.2): however many findings a message has, its ACK lists at
// most 100 (errors first) and one ERR that counts the rest; the archive keeps them all.
func TestJunkMessageACKIsBounded(t *testing.T) {
	e := newEngine(t, "production")
	msg := junkVXU(t, "JUNK-1", 4000) // under limits.max_segments (5,000): past it the message is refused unread
	a, raw := e.send(t, msg)
	if a.Get("MSA-2") != "JUNK-1" {
		t.Fatalf("MSA-2 = %q", a.Get("MSA-2"))
	}
	if n := a.Count("ERR"); n != ack.DefaultMaxERR+1 {
		t.Fatalf("%d ERR segments, want %d", n, ack.DefaultMaxERR+1)
	}
	last, _ := a.Find("ERR", ack.DefaultMaxERR+1)
	m := moreFindings.FindStringSubmatch(last.Field(8).String())
	if m == nil {
		t.Fatalf("last ERR-8 = %q, want the count of the findings left out", last.Field(8).String())
	}
	more, _ := strconv.Atoi(m[1])
	t.Logf("%d-byte message with 4,000 junk OBX: %d findings, ACK %d bytes", len(msg), ack.DefaultMaxERR+more, len(raw))
	if len(raw) > 64<<10 {
		t.Errorf("ACK of %d bytes", len(raw))
	}
	var listed, archivedMore, compact int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT json_array_length(findings), more_findings_count, length(more_findings)
		FROM messages WHERE control_id = 'JUNK-1'`).Scan(&listed, &archivedMore, &compact); err != nil {
		t.Fatal(err)
	}
	if listed != ack.DefaultMaxERR || archivedMore != more {
		t.Errorf("archive: %d listed + %d more, want %d + %d", listed, archivedMore, ack.DefaultMaxERR, more)
	}
	t.Logf("archive: %d findings in json, %d in %d compact bytes", listed, archivedMore, compact)
	// Past limits.max_findings the message is rejected (AR): nothing of it is final, so sending it
	// again is processed again, and answered with an ACK as bounded as the first.
	if code := a.Get("MSA-1"); code != "AR" {
		t.Errorf("MSA-1 = %q, want AR past limits.max_findings", code)
	}
	if again, rawAgain := e.send(t, msg); again.Count("ERR") != ack.DefaultMaxERR+1 || len(rawAgain) > 64<<10 {
		t.Errorf("second send: %d ERR, %d bytes", again.Count("ERR"), len(rawAgain))
	}
}

// BenchmarkJunkMessage measures, over MLLP into PostgreSQL, what one 3.5 MB VXU with 120,000 junk
// OBX segments costs: the ACK's size, and the peak of the Go heap above what it held before
// (runtime/metrics, sampled every 2 ms; the process also holds the client's copy of the message
// and its ACK, a few MB). Run it alone:
//
//	go test -run '^$' -bench JunkMessage -benchtime=1x ./ingest/
func BenchmarkJunkMessage(b *testing.B) {
	e := newEngine(b, "production")
	var ackBytes, peak float64
	for i := range b.N {
		msg := junkVXU(b, fmt.Sprintf("JUNK-%d", i), 120_000)
		runtime.GC()
		base := heapBytes()
		stop := make(chan struct{})
		var high uint64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				if h := heapBytes(); h > high {
					high = h
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		start := time.Now()
		raw := sendSlow(b, e.addr, msg)
		elapsed := time.Since(start)
		close(stop)
		wg.Wait()
		ackBytes = float64(len(raw))
		if d := float64(high) - float64(base); d > peak {
			peak = d
		}
		b.Logf("message %d bytes, ACK %d bytes in %v; heap %d MB before, peak %d MB", len(msg), len(raw), elapsed.Round(time.Millisecond), base>>20, high>>20)
	}
	b.ReportMetric(ackBytes, "ack-bytes")
	b.ReportMetric(peak/(1<<20), "peak-heap-MB")
}

// sendSlow sends one message over MLLP and waits up to 5 minutes for its ACK.
func sendSlow(b *testing.B, addr string, msg []byte) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := mllp.Dial(ctx, addr, nil, mllp.WithTimeout(5*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	raw, err := c.Send(ctx, msg)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// heapBytes is the memory of live and not yet swept heap objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
