package vxugen_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"
	_ "time/tzdata" // dst-zone: the same zone data everywhere

	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// goldenCases are option sets whose traffic was digested before the generator was rewritten for
// speed (build into reused buffers): the same options and seed must keep sending the same bytes,
// so that runs stay comparable and --verify-records can generate its sample again.
var goldenCases = []struct {
	name string
	o    vxugen.Options
	n    int
	sum  string
}{
	{"defaults", vxugen.Options{Seed: 1, ControlIDs: "G-0"}, 3000, "e8374de7753de318217a2cd09197eed077b223135426e55704e1f78cde88942d"},
	{"bench-like", vxugen.Options{Seed: 1*1000003 + 7, Facility: "X68", ProcessingID: "P", ControlIDs: "Babc123-7", Patients: 15000, UpdateShare: 0.05}, 3000, "a63d8c18c6f942582150e8c81844a8c3686e7fe83d21101c51dbf6aa5f1db4c1"},
	{"small-population", vxugen.Options{Seed: 42, Facility: "F1", ProcessingID: "T", ControlIDs: "R", Patients: 50, UpdateShare: 0.3, Historical: 0.5}, 2000, "e433fa7318bbfa43eb5985e7345757ff13bf0e76d2b878c1e0c1b1e307cb5efe"},
	{"new-patients", vxugen.Options{Seed: 9, Facility: "X68", ControlIDs: "NP-3", NewPatients: true}, 2000, "b1fcaafbf04597406d4608529dbfc3c2fd3c25409e7fe094d01115c9be30c4f8"},
	{"all-historical", vxugen.Options{Seed: 77, ControlIDs: "H", Patients: 10, Historical: 1, UpdateShare: 0.9}, 1000, "0b2b63fadfd816702b5210529d4e7ca0eb242145d4e337b326d6cd61cb705d9f"},
	{"other-zone", vxugen.Options{Seed: 5, ControlIDs: "Z-12", Patients: 300}, 1000, "96afa138be5b2998747d9134e33647a08d069af0895771db0bde8b03e28f39a3"},
	{"escaped-options", vxugen.Options{Seed: 8, Facility: "F|A^B~C&D", ProcessingID: `""`, ControlIDs: `""`, Patients: 40, UpdateShare: 0.2}, 500, "112fbd8660a657b63d554e72e2929cb5703702ee8a8a63c6b7d9be89020d6013"},
	{"escaped-new", vxugen.Options{Seed: 8, Facility: `""`, ControlIDs: "N\\x\n", NewPatients: true}, 500, "eccf3bcb9c0d917251f47823b3401de46e5f31405a6f170ae2c48d5b6da45a22"},
	{"dst-zone", vxugen.Options{Seed: 6, ControlIDs: "DST", Patients: 3000}, 2000, "c5db6af1e257b68b40b5b871895629570c97d5de9880c38f81d1fd43faac6503"},
}

// goldenNow is the generators' clock; other-zone runs in a zone east of UTC (MSH-7's offset),
// dst-zone in one with daylight saving time.
var goldenNow = time.Date(2026, 11, 1, 12, 34, 56, 0, time.UTC)

// digest hashes n messages (each with its length, so that boundaries count) and the patient ID
// Next reported for each.
func digest(g *vxugen.Generator, n int) string {
	h := sha256.New()
	var l [8]byte
	for i := 0; i < n; i++ {
		msg := g.Next()
		binary.LittleEndian.PutUint64(l[:], uint64(len(msg)))
		h.Write(l[:])
		h.Write(msg)
		h.Write([]byte(g.PatientID()))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestGolden: the generated traffic, byte for byte, is what the generator sent before it was
// optimized, for several option sets.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		o := c.o
		o.Now = goldenNow
		switch c.name {
		case "other-zone":
			o.Now = goldenNow.In(time.FixedZone("X", 5*3600+30*60))
		case "dst-zone":
			// Half an hour after midnight on the day daylight saving time ends, with nanoseconds:
			// whole days before it fall at 23:30 of the day before in winter.
			ny, err := time.LoadLocation("America/New_York")
			if err != nil {
				t.Fatal(err)
			}
			o.Now = time.Date(2026, 11, 1, 0, 30, 0, 123456789, ny)
		}
		if got := digest(vxugen.New(o), c.n); got != c.sum {
			t.Errorf("%s: digest %s, want %s", c.name, got, c.sum)
		}
	}
}

// BenchmarkNext is the cost of one message, as `vaxgate bench` asks for it.
func BenchmarkNext(b *testing.B) {
	for _, c := range goldenCases[1:4] {
		b.Run(c.name, func(b *testing.B) {
			o := c.o
			o.Now = goldenNow
			g := vxugen.New(o)
			b.ReportAllocs()
			for b.Loop() {
				_ = g.Next()
				_ = g.PatientID()
			}
		})
	}
}

// BenchmarkAppendNext is the cost of one message built into a reused buffer, as `vaxgate bench`
// builds it (framed in its write buffer).
func BenchmarkAppendNext(b *testing.B) {
	o := goldenCases[1].o
	o.Now = goldenNow
	g := vxugen.New(o)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = g.AppendNext(buf[:0])
	}
}
