package ingest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/validate"
)

// hostileVXU builds a VXU of about size bytes whose bulk is either the repetitions of PID-5
// (kind "tildes": "~~~...", kind "reps": "Doe^Jo~Doe^Jo~...") or OBX segments after the vaccination
// (kind "obx").
func hostileVXU(kind string, size int) []byte {
	var b bytes.Buffer
	b.WriteString("MSH|^~\\&|EHR|FAC-A|IIS|STATE|20240310101500-0500||VXU^V04^VXU_V04|CTRL-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r")
	head := "PID|1||MRN-1^^^CLINIC^MR||"
	tail := "|Smith^^^^^^M|20190402|F\rORC|RE||ORD-1^CLINIC\rRXA|0|1|20240310||08^Hep B^CVX|0.5|mL^mL^UCUM||00^New^NIP001||||||LOT1|20251231|MSD^Merck^MVX|||CP|A\r"
	switch kind {
	case "tildes": // the torture run's PID-5: "~" and nothing else
		b.WriteString(head)
		b.WriteString(strings.Repeat("~", max(0, size-b.Len()-len(tail))))
		b.WriteString(tail)
	case "reps":
		b.WriteString(head)
		for b.Len() < size-len(tail) {
			b.WriteString("Doe^Jo~")
		}
		b.WriteString("Doe^Jo" + tail)
	case "obx":
		b.WriteString(head + "Doe^Jo^^^^^L" + tail)
		for i := 1; b.Len() < size; i++ {
			fmt.Fprintf(&b, "OBX|%d|CE|64994-7^Eligibility^LN|%d|V02^VFC eligible^HL70064||||||F\r", i, i)
		}
	}
	return b.Bytes()
}

// unboundedValidator validates with limits raised out of the way, so that every pass reads the
// whole message: what the benchmark and the fuzz bound measure is the passes, not the limits.
func unboundedValidator(tb testing.TB) *validate.Validator {
	tb.Helper()
	v, err := validate.New(validate.Options{MaxSegments: 1 << 30, MaxRepetitions: validate.MaxRepetitionsLimit, MaxFindings: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// BenchmarkDecodeValidate parses, validates and decodes hostile messages of 64 KB, 512 KB and 4 MB
// (PID-5 of "~" only, PID-5 of "Doe^Jo~" repetitions, OBX segments):
// MB/s must stay flat as the size grows (it fell with the square of the size when loops indexed
// repetitions with Rep(i)).
//
// "limits=default" is the server's configuration (the limits reject such messages after one read of
// them); "limits=off" raises the limits so that every pass reads everything.
func BenchmarkDecodeValidate(b *testing.B) {
	def, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, lim := range []struct {
		name string
		v    *validate.Validator
	}{{"default", def}, {"off", unboundedValidator(b)}} {
		for _, kind := range []string{"tildes", "reps", "obx"} {
			for _, size := range []int{64 << 10, 512 << 10, 4 << 20} {
				benchDecodeValidate(b, lim.name, lim.v, kind, size)
			}
		}
	}
}

func benchDecodeValidate(b *testing.B, lim string, v *validate.Validator, kind string, size int) {
	{
		{
			msg := hostileVXU(kind, size)
			b.Run(fmt.Sprintf("limits=%s/%s/%dKB", lim, kind, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				var m hl7.Message
				cpu0 := cpuTime()
				for b.Loop() {
					if err := m.Parse(msg); err != nil {
						b.Fatal(err)
					}
					v.Validate(&m, "SITE-A")
					DecodeWith(&m, v)
				}
				// On a shared machine wall time includes waiting for a core; the process's CPU
				// time per MB is the measure that must stay flat.
				cpu := float64(cpuTime()-cpu0) / float64(b.N)
				b.ReportMetric(cpu/(float64(len(msg))/(1<<20))/1e6, "cpu-ms/MB")
			})
		}
	}
}

// TestDecodeValidateLinear is the benchmark's claim as a coarse test that cannot flake: 4 MB of
// PID-5 repetitions is parsed, validated and decoded in well under a second on any machine (the
// quadratic loops took over 13 minutes).
func TestDecodeValidateLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	v := unboundedValidator(t)
	size, runs := 4<<20, 3
	if raceSlowdown > 1 {
		size, runs = 1<<20, 1 // the race detector is slow enough already
	}
	for _, kind := range []string{"tildes", "reps", "obx"} {
		msg := hostileVXU(kind, size)
		d := minDuration(runs, func() {
			m, err := hl7.Parse(msg)
			if err != nil {
				t.Fatal(err)
			}
			v.Validate(m, "SITE-A")
			DecodeWith(m, v)
		})
		// Linear code does this in ~100 ms (several times more under -race); quadratic in minutes.
		if d > 20*time.Second*raceSlowdown {
			t.Errorf("%s: %d bytes took %v", kind, len(msg), d)
		}
		t.Logf("%s: %d bytes in %v", kind, len(msg), d)
	}
}

// cpuTime is the CPU time (user and system) the process has used, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// minDuration runs f n times and returns the shortest run: the measure least disturbed by
// other work on the machine.
func minDuration(n int, f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range n {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}

// FuzzLinear checks that parsing, validating and decoding cost time in proportion to the input:
// each input is amplified to about 128 KB three ways — its segments repeated, its last segment
// made long by repeating its own bytes, its last field made long by repeating its own content
// (repetitions, components: whatever it holds) —
// and must be processed within a generous bound per byte. A loop that rescans from the start
// (quadratic) needs seconds for such inputs; linear code milliseconds. The bound is checked on
// the fastest of three runs so that a busy machine does not make it fail.
func FuzzLinear(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "vxu_basic.hl7")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rPID|1||1||~"))
	f.Add([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rPID|1||1||a^b&c~"))
	f.Add([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rRXA|0|1|2024||08^^CVX\rOBX|1|CE|x|"))
	f.Add([]byte("MSH|^~\\&|A|B|||2024||VXU^V04|1|P|2.5.1\rZZZ|1|"))
	v := unboundedValidator(f)
	// 128 KB: large enough that a quadratic loop needs over a second (the old PID-5 loop needs
	// about 1.5 s for 128 KB of "~"), small enough that the fuzzer runs an input per second or so.
	const target = 128 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 4096 {
			return
		}
		for _, in := range amplify(data, target) {
			m, err := hl7.Parse(in)
			if err != nil {
				continue
			}
			d := minDuration(3, func() {
				_ = m.Parse(in)
				v.Validate(m, "SITE-A")
				DecodeWith(m, v)
			})
			// 3 µs per byte (0.45 s with the fixed part for 128 KB) is five to ten times what
			// linear code needs on a busy machine (raceSlowdown times more under the race
			// detector); the quadratic PID-5 loop needed 1.5 s.
			bound := (50*time.Millisecond + time.Duration(len(in))*3*time.Microsecond) * raceSlowdown
			if d > bound {
				t.Fatalf("%d bytes took %v (bound %v): not linear in the input", len(in), d, bound)
			}
		}
	})
}

// amplify returns data grown to about size bytes in three ways: its segments repeated, its last
// segment extended by repeating its own bytes without segment terminators, and its last field
// extended by repeating its own content (repetitions, components) within the field.
func amplify(data []byte, size int) [][]byte {
	lines := strings.FieldsFunc(string(data), func(r rune) bool { return r == '\r' || r == '\n' })
	if len(lines) == 0 {
		return nil
	}
	grown := bytes.NewBuffer(make([]byte, 0, size+len(data)))
	grown.Write(data)
	for grown.Len() < size {
		grown.WriteByte('\r')
		grown.WriteString(strings.Join(lines[min(1, len(lines)-1):], "\r"))
	}
	long := bytes.NewBuffer(make([]byte, 0, size+len(data)))
	long.Write(bytes.TrimRight(data, "\r\n"))
	last := lines[len(lines)-1]
	if len(last) > 4 {
		last = last[4:] // without the segment name and its separator
	}
	if len(last) == 0 {
		last = "~"
	}
	for long.Len() < size {
		long.WriteString(last)
	}
	// Its last field made long: its own repetitions, components and subcomponents repeated.
	field := bytes.NewBuffer(make([]byte, 0, size+len(data)))
	field.Write(bytes.TrimRight(data, "\r\n"))
	tail := last[strings.LastIndexByte(last, '|')+1:]
	if tail == "" {
		tail = "~"
	}
	for field.Len() < size {
		field.WriteString(tail)
	}
	return [][]byte{grown.Bytes(), long.Bytes(), field.Bytes()}
}
