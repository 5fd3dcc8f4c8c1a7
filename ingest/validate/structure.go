package validate

import (
	"github.com/vaxgate/vaxgate/ack"
)

// nodeOf maps a segment definition to its node in z22Structure (each Z22 segment has one place).
var nodeOf = func() (t [numSegDefs]int) {
	for i := range t {
		t[i] = -1
	}
	for i, n := range z22Structure {
		if n.group == "" {
			t[n.seg] = i
		}
	}
	return t
}()

// orderGroupNode is the node of the VXU_V04.ORDER group: entering it other than by ORC or RXA is
// a segment out of place, not a new vaccination.
var orderGroupNode = z22Structure[nodeOf[segORC]].parent

const numNodes = len(z22Structure)

// segInfo is what the structure pass learns about each segment of the message.
type segInfo struct {
	def    segRef // Z22 segment definition; -1 for a segment Z22 does not have
	seq    int    // 1-based occurrence of the segment's name in the message
	group  int    // 1-based order group (ingest.GroupOf's rule), 0 outside any
	f0     int32  // its fields are r.fields[f0:f0+nf] (indexFields)
	nf     int32
	header bool // MSH, FHS or BHS: field 1 is the field separator
}

// orderGroup is one vaccination: its segments by index in the message (-1 when absent).
type orderGroup struct {
	orc, rxa, rxr    int
	obxFrom, obxTo   int // r.obx[obxFrom:obxTo] are its OBX segment indices
	admin, given     bool
	rxaDate          date
	cvx              *vaccineInfo
	ndcMVX           string // the manufacturer the CDC links to an NDC in RXA-5
	status           string // RXA-20, "" when empty
	historicalSource bool   // RXA-9 says historical
}

// structure checks the segment sequence against the Z22 structure and computes each segment's
// occurrence number and order group.
func (r *run) structure() {
	n := r.m.NumSegments()
	var counts [numSegDefs]int
	for i := range n {
		s := r.m.Segment(i)
		def := segByBytes(s.Raw())
		info := segInfo{def: def}
		if def >= 0 {
			counts[def]++
			info.seq = counts[def]
		} else {
			name := s.Name()
			// Occurrence numbers of non-Z22 segments, counted by name: a map, so that a message
			// of many unknown segments costs time in proportion to their number.
			if r.extra == nil {
				r.extra = map[string]int{}
			}
			r.extra[name]++
			info.seq = r.extra[name]
		}
		r.segs = append(r.segs, info)
		r.indexFields(i, s)
	}
	r.groupSegments()
	r.structureOnce()
	if counts[segPID] == 0 {
		r.report(rulePIDMissing, -1, ack.Location{}, args{})
	}
	if counts[segRXA] == 0 {
		r.report(ruleNoOrder, -1, ack.Location{}, args{})
	}
	r.pid = -1
	for i := range r.segs {
		if r.segs[i].def == segPID {
			r.pid = i
			break
		}
	}
}

// groupSegments assigns order groups by the rule ingest.Decode and ingest.GroupOf use, so that a
// finding's Group names the vaccination the pipeline will reject: an ORC belongs to the RXA that
// follows it, RXR, OBX and NTE to the RXA before them.
func (r *run) groupSegments() {
	g := 0
	orcAt := -1
	in := false
	for i := range r.segs {
		switch r.segs[i].def {
		case segORC:
			orcAt = i
			in = false
		case segRXA:
			g++
			r.orders = append(r.orders, orderGroup{orc: -1, rxa: i, rxr: -1})
			o := &r.orders[g-1]
			if orcAt >= 0 {
				r.segs[orcAt].group = g
				o.orc = orcAt
				orcAt = -1
			}
			r.segs[i].group = g
			o.obxFrom, o.obxTo = len(r.obx), len(r.obx)
			in = true
		default:
			if !in {
				continue
			}
			r.segs[i].group = g
			o := &r.orders[g-1]
			switch r.segs[i].def {
			case segRXR:
				if o.rxr < 0 {
					o.rxr = i
				}
			case segOBX:
				r.obx = append(r.obx, i)
				o.obxTo = len(r.obx)
			}
		}
	}
}

// maxStructKey bounds the messages whose sequence of segments is remembered (structureOnce).
const maxStructKey = 64

// structureOnce is matchStructure, skipped when a message with the same sequence of segment
// definitions was found in order: what matchStructure finds depends on that sequence alone, and
// traffic repeats a few sequences (MSH PID PD1 NK1 ORC RXA RXR OBX...).
func (r *run) structureOnce() {
	if len(r.segs) > maxStructKey {
		r.matchStructure()
		return
	}
	var buf [maxStructKey]byte
	key := buf[:0]
	for i := range r.segs {
		if r.segs[i].def < 0 {
			r.matchStructure() // an unknown segment is a finding: never remembered
			return
		}
		key = append(key, byte(r.segs[i].def))
	}
	if hasBytes(&r.v.clean.structs, key) {
		return
	}
	before := r.reports
	r.matchStructure()
	if r.reports == before {
		r.v.clean.structs.add(string(key))
	}
}

// matchStructure walks the segments through the pre-order structure. cur is the node of the last
// segment accepted; a segment may move forward (leaving and entering groups), repeat its node
// within its cardinality, or start a new instance of a repeating group of which it is the first
// or a required child. Anything else is out of order and leaves the state alone, so that one
// misplaced segment yields one finding.
func (r *run) matchStructure() {
	var count [numNodes]int     // occurrences of each node in the current instance of its groups
	var instances [numNodes]int // instances of each group node
	var instStart [numNodes]int // segment index where the current instance of a group began
	var chain [8]int
	rxaNode := nodeOf[segRXA]
	cur := -1
	pidSeen := false

	parent := func(n int) int { return z22Structure[n].parent }
	// inside reports whether node x is a descendant of group g.
	inside := func(g, x int) bool { return x >= 0 && g < x && x < z22Structure[g].end }
	closeGroup := func(g int) {
		if g == orderGroupNode && count[rxaNode] == 0 {
			r.report(ruleRXAMissing, instStart[g], r.segLoc(instStart[g]), args{})
		}
	}
	// leave closes the groups that contain from but do not contain to (to -1: the end).
	leave := func(from, to int) {
		for g := parent(from); g >= 0 && !inside(g, to); g = parent(g) {
			closeGroup(g)
		}
	}
	// enter opens, outermost first, the groups that contain to up to (not including) stop, and
	// reports a group entered other than by its first segment.
	enter := func(stop, to, seg int) {
		k := 0
		for g := parent(to); g >= 0 && g != stop && k < len(chain); g = parent(g) {
			chain[k] = g
			k++
		}
		for j := k - 1; j >= 0; j-- {
			g := chain[j]
			instances[g]++
			instStart[g] = seg
			for x := g + 1; x < z22Structure[g].end; x++ {
				count[x] = 0
			}
			first := g + 1
			if j == 0 && to == first || j > 0 && chain[j-1] == first {
				continue
			}
			if g == orderGroupNode {
				r.report(ruleORCMissing, seg, r.segLoc(seg), args{})
			} else {
				r.report(ruleSegmentOrder, seg, r.segLoc(seg), args{value: r.segName(seg),
					detail: " (it needs " + z22Segments[z22Structure[first].seg].name + " before it)"})
			}
		}
	}
	// restart finds the innermost repeating group containing cur whose new instance n may start:
	// n is its first child or one of its required children (a second RXA is a new vaccination,
	// even without its ORC).
	restart := func(n int) int {
		for g := parent(cur); g >= 0; g = parent(g) {
			if !inside(g, n) {
				continue
			}
			if z22Structure[g].max >= 0 && instances[g] >= z22Structure[g].max {
				return -1
			}
			if n == g+1 || z22Structure[n].usage == uR && parent(n) == g {
				return g
			}
			return -1
		}
		return -1
	}

	for i := range r.segs {
		def := r.segs[i].def
		if def < 0 {
			r.report(ruleSegmentUnknown, i, r.segLoc(i), args{value: r.segName(i)})
			continue
		}
		n := nodeOf[def]
		if def == segPID && pidSeen {
			r.report(rulePIDRepeat, i, r.segLoc(i), args{})
			continue
		}
		switch {
		case cur < 0 || n > cur:
			if cur >= 0 && inside(orderGroupNode, n) && !inside(orderGroupNode, cur) && def != segORC && def != segRXA {
				// An RXR or OBX before any ORC/RXA is not a vaccination of its own.
				r.report(ruleSegmentOrder, i, r.segLoc(i), args{value: r.segName(i), detail: " (it needs ORC and RXA before it)"})
				continue
			}
			if cur >= 0 && r.skipsRequired(cur, n, count[:]) {
				// e.g. RXR or OBX between ORC and its RXA: out of place, not a new vaccination.
				r.report(ruleSegmentOrder, i, r.segLoc(i), args{value: r.segName(i),
					detail: " (after " + z22Segments[z22Structure[cur].seg].name + ")"})
				continue
			}
			stop := -1
			if cur >= 0 {
				leave(cur, n)
				for g := parent(n); g >= 0; g = parent(g) {
					if inside(g, cur) {
						stop = g
						break
					}
				}
			}
			enter(stop, n, i)
		case n == cur && (z22Structure[n].max < 0 || count[n] < z22Structure[n].max):
		default:
			if g := restart(n); g >= 0 {
				leave(cur, g) // closes g's old instance too: g is not inside itself
				enter(parent(g), n, i)
				break
			}
			if n == cur {
				r.report(ruleSegmentRepeat, i, r.segLoc(i), args{value: r.segName(i)})
			} else {
				r.report(ruleSegmentOrder, i, r.segLoc(i), args{value: r.segName(i),
					detail: " (after " + z22Segments[z22Structure[cur].seg].name + ")"})
			}
			continue
		}
		cur = n
		count[n]++
		if def == segPID {
			pidSeen = true
		}
	}
	if cur >= 0 {
		leave(cur, -1)
	}
}

// skipsRequired reports whether moving forward from node cur to node n would skip a required
// segment of a group instance that is open (contains cur) and has not had it yet. The top level
// is left out: a missing PID is reported once, not as every later segment being out of order.
func (r *run) skipsRequired(cur, n int, count []int) bool {
	for x := cur + 1; x < n; x++ {
		nd := &z22Structure[x]
		if nd.group != "" || nd.usage != uR || count[x] > 0 || nd.parent < 0 {
			continue
		}
		if p := nd.parent; p < cur && cur < z22Structure[p].end {
			return true
		}
	}
	return false
}

// segName returns the name of segment i (without allocating for standard names).
func (r *run) segName(i int) string { return r.m.Segment(i).Name() }

// segLoc is the location of a whole segment.
func (r *run) segLoc(i int) ack.Location {
	return ack.Location{Segment: r.segName(i), Sequence: r.segs[i].seq}
}
