package validate

import (
	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// run is the state of one Validate call. Runs are pooled: their slices keep their capacity, so a
// message without findings costs no allocation once the pool is warm.
type run struct {
	v     *Validator
	m     *hl7.Message
	data  []byte // m.Bytes()
	d     hl7.Delimiters
	sev   []ack.Severity
	today date

	segs     []segInfo
	fields   []span          // where the fields of the segments are (fields.go)
	memo     []memoEntry     // fields of this message found clean by the elements pass (seenClean)
	ruleMemo []ruleMemoEntry // fields of this message found clean by the address and phone rules
	classes  []fieldClassOf  // the elements pass's classes of the fields of one segment
	orders   []orderGroup
	obx      []int // OBX segment indices of the order groups, each group's a contiguous run
	items    []item
	extra    map[string]int // occurrences of non-Z22 segment names; nil until one is met

	reports   int  // problems met, findings or not (see report)
	dropped   int  // findings past the findings limit, not kept
	droppedE  bool // one of them was an error
	truncated bool // validation stopped at the segment limit

	pid     int  // index of the PID segment, -1 when none
	birth   date // PID-7 when valid
	death   date // PID-29 when valid
	msgDate date // MSH-7 when valid
}

func (r *run) reset(v *Validator, m *hl7.Message, sev []ack.Severity) {
	r.v, r.m, r.sev = v, m, sev
	r.data = m.Bytes()
	r.d = m.Delimiters()
	r.today = dateOf(v.now())
	r.segs = r.segs[:0]
	if cap(r.fields) > 1<<16 {
		r.fields, r.classes = nil, nil // do not keep a hostile message's index in the pool
	}
	r.fields = r.fields[:0]
	r.memo = r.memo[:0]
	r.ruleMemo = r.ruleMemo[:0]
	r.orders = r.orders[:0]
	r.obx = r.obx[:0]
	r.items = r.items[:0]
	if len(r.extra) > 64 {
		r.extra = nil // do not keep a hostile message's names in the pool
	}
	clear(r.extra)
	r.dropped, r.droppedE, r.truncated, r.reports = 0, false, false, 0
	r.pid = -1
	r.birth, r.death, r.msgDate = 0, 0, 0
}

// loc is the location of field n (component comp, 0 for the field) of segment i.
func (r *run) loc(i, n, rep, comp int) ack.Location {
	return ack.Location{Segment: r.segName(i), Sequence: r.segs[i].seq, Field: n, Rep: rep, Component: comp}
}
