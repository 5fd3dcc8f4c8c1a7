package hl7

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestIterators(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|APP|FAC\rPID|1||A^^^X~~B&b^C||Doe^Jo\rZZZ"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, s := range m.Segments() {
		if s.Index() != i {
			t.Errorf("segment %d has index %d", i, s.Index())
		}
		names = append(names, s.Name())
	}
	if strings.Join(names, ",") != "MSH,PID,ZZZ" {
		t.Errorf("segments %v", names)
	}
	msh := m.Segment(0)
	for n, f := range msh.Fields() {
		if got, want := string(f.Raw()), string(msh.Field(n).Raw()); got != want {
			t.Errorf("MSH field %d: iterator %q, Field %q", n, got, want)
		}
	}
	pid := m.Segment(1)
	count := 0
	for n, f := range pid.Fields() {
		count++
		if got, want := string(f.Raw()), string(pid.Field(n).Raw()); got != want {
			t.Errorf("PID field %d: iterator %q, Field %q", n, got, want)
		}
	}
	if count != 5 {
		t.Errorf("PID has %d fields by the iterator, want 5", count)
	}
	f := pid.Field(3)
	var reps []string
	for k, r := range f.Reps() {
		if string(r.Raw()) != string(f.Rep(k).Raw()) {
			t.Errorf("rep %d: %q vs %q", k, r.Raw(), f.Rep(k).Raw())
		}
		reps = append(reps, string(r.Raw()))
		for c, comp := range r.Components() {
			if string(comp.Raw()) != string(r.Component(c).Raw()) {
				t.Errorf("rep %d comp %d: %q vs %q", k, c, comp.Raw(), r.Component(c).Raw())
			}
			for s, sub := range comp.Subs() {
				if string(sub.Raw()) != string(comp.Sub(s).Raw()) {
					t.Errorf("sub %d.%d.%d: %q vs %q", k, c, s, sub.Raw(), comp.Sub(s).Raw())
				}
			}
		}
	}
	if strings.Join(reps, "|") != "A^^^X||B&b^C" || len(reps) != f.NumReps() {
		t.Errorf("reps %q", reps)
	}
	for range pid.Field(4).Reps() {
		t.Error("an empty field has no repetitions")
	}
	// Breaking out of a loop stops it.
	n := 0
	for range f.Reps() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break: %d iterations", n)
	}
}

func TestLocate(t *testing.T) {
	msg := "MSH|^~\\&|APP|FAC\rPID|1||A^^^X~~B&b^C||Doe^Jo\rZZZ"
	m, err := Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   string // a unique substring; its first byte is located
		want Position
	}{
		{"MSH", Position{0, 0, 0, 0, 0}},
		{"^~", Position{0, 2, 1, 1, 1}},
		{"APP", Position{0, 3, 1, 1, 1}},
		{"FAC", Position{0, 4, 1, 1, 1}},
		{"1||", Position{1, 1, 1, 1, 1}},
		{"X~", Position{1, 3, 1, 4, 1}},
		{"b^C", Position{1, 3, 3, 1, 2}},
		{"C||", Position{1, 3, 3, 2, 1}},
		{"Jo", Position{1, 5, 1, 2, 1}},
	} {
		got, ok := m.Locate(strings.Index(msg, c.at))
		if !ok || got != c.want {
			t.Errorf("Locate(%q) = %+v %v, want %+v", c.at, got, ok, c.want)
		}
	}
	if _, ok := m.Locate(strings.Index(msg, "\r")); ok {
		t.Error("a terminator has no position")
	}
	if _, ok := m.Locate(len(msg)); ok {
		t.Error("past the end has no position")
	}
}

func TestFallbackCharset(t *testing.T) {
	msg := []byte("MSH|^~\\&|A|B||||||1|P|2.5.1\rPID|1||1||Jos\xe9^Ren\xc3\xa9~X\x81Y\r")
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Get("PID-5-1"); got != "Jos\uFFFD" {
		t.Errorf("without a fallback: %q", got)
	}
	latin1, _ := DecoderFor("8859/1")
	cp1252, _ := DecoderFor("windows-1252")
	m.SetFallback(cp1252)
	if got := m.Get("PID-5-1"); got != "José" {
		t.Errorf("with a Windows-1252 fallback: %q", got)
	}
	if got := m.Get("PID-5-2"); got != "René" {
		t.Errorf("valid UTF-8 beside the fallback: %q", got)
	}
	if got := m.Get("PID-5(2)-1"); got != "X\uFFFDY" {
		t.Errorf("a byte Windows-1252 does not define: %q", got)
	}
	if cp1252.Defines(0x81) || !cp1252.Defines(0xE9) || !latin1.Defines(0x81) {
		t.Error("Defines")
	}
	m.SetFallback(latin1)
	if got := m.Get("PID-5(2)-1"); got != "X\u0081Y" {
		t.Errorf("with an ISO-8859-1 fallback: %q", got)
	}
	if !m.Decoder().IsUTF8() || m.Decoder().Fallback() != latin1 {
		t.Error("Decoder after SetFallback")
	}
	// A declared single-byte character set is not changed by a fallback.
	m2, _ := Parse([]byte("MSH|^~\\&|A|B||||||1|P|2.5.1||||||8859/1\rPID|1||1||Jos\xe9\r"))
	m2.SetFallback(cp1252)
	if got := m2.Get("PID-5"); got != "José" || m2.Decoder().Name() != "ISO-8859-1" {
		t.Errorf("declared Latin-1: %q %s", got, m2.Decoder().Name())
	}
}

func TestIteratorsDoNotAllocate(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|APP|FAC\rPID|1||A^^^X~~B&b^C||Doe^Jo~Roe^Al\r"))
	if err != nil {
		t.Fatal(err)
	}
	sink := 0
	n := testing.AllocsPerRun(100, func() {
		for _, s := range m.Segments() {
			for _, f := range s.Fields() {
				for _, r := range f.Reps() {
					for _, c := range r.Components() {
						for _, sc := range c.Subs() {
							sink += len(sc.Raw())
						}
					}
				}
			}
		}
	})
	if n != 0 {
		t.Errorf("iterating allocates %v times per run", n)
	}
	_ = sink
}

// BenchmarkRepsLinear reads every repetition of a PID-5 of 1,000 to 1,000,000
// "~": the time per repetition must not grow with their number (it did with
// Rep(i), which rescans the field: quadratic).
func BenchmarkRepsLinear(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		msg := []byte("MSH|^~\\&|A\rPID|1||1||" + strings.Repeat("~", n) + "\r")
		m, err := Parse(msg)
		if err != nil {
			b.Fatal(err)
		}
		f := m.Segment(1).Field(5)
		b.Run("reps="+itoaTest(n), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				k := 0
				for range f.Reps() {
					k++
				}
				if k != n+1 {
					b.Fatalf("%d reps", k)
				}
			}
		})
	}
}

func itoaTest(n int) string {
	s := ""
	for n > 0 || s == "" {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

// FuzzIterators: the iterators see exactly what Field, Rep, Component and Sub see, Locate places
// every byte of a field inside the value it names, and with a fallback character set every value
// decodes to valid UTF-8.
func FuzzIterators(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	cp1252, _ := DecoderFor("windows-1252")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := Parse(data)
		for i, s := range m.Segments() {
			if i > 50 {
				break
			}
			for n, fl := range s.Fields() {
				if n > 40 {
					break
				}
				if !bytes.Equal(fl.Raw(), s.Field(n).Raw()) || fl.Offset() != s.Field(n).Offset() {
					t.Fatalf("segment %d field %d: iterator %q at %d, Field %q at %d", i, n, fl.Raw(), fl.Offset(), s.Field(n).Raw(), s.Field(n).Offset())
				}
				for k, r := range fl.Reps() {
					if k > 20 {
						break
					}
					if !bytes.Equal(r.Raw(), fl.Rep(k).Raw()) {
						t.Fatalf("rep %d: %q vs %q", k, r.Raw(), fl.Rep(k).Raw())
					}
					for c, comp := range r.Components() {
						if c > 20 {
							break
						}
						if !bytes.Equal(comp.Raw(), r.Component(c).Raw()) {
							t.Fatalf("component %d: %q vs %q", c, comp.Raw(), r.Component(c).Raw())
						}
						for sc, sub := range comp.Subs() {
							if sc > 10 {
								break
							}
							if !bytes.Equal(sub.Raw(), comp.Sub(sc).Raw()) {
								t.Fatalf("sub %d: %q vs %q", sc, sub.Raw(), comp.Sub(sc).Raw())
							}
							// Locate agrees with where the iterators found the value.
							if len(sub.Raw()) > 0 && !(m.Segment(i).Is("MSH") && n <= 2) {
								p, ok := m.Locate(sub.Offset())
								if !ok || p.Segment != i || p.Field != n || p.Rep != k || p.Component != c || p.Subcomponent != sc {
									t.Fatalf("Locate(%d) = %+v %v, want segment %d field %d rep %d comp %d sub %d",
										sub.Offset(), p, ok, i, n, k, c, sc)
								}
							}
						}
					}
				}
			}
		}
		for off := range min(len(data), 2000) {
			_, _ = m.Locate(off) // never panics
		}
		m.SetFallback(cp1252)
		for _, p := range []string{"PID-5-1", "PID-5", "MSH-10", "OBX-5", "NTE-3"} {
			if s := m.Get(p); !utf8.ValidString(s) {
				t.Fatalf("Get(%q) with a fallback = %q: not UTF-8", p, s)
			}
		}
	})
}
