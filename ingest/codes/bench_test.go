package codes_test

import (
	"testing"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Lookups run for every RXA of every message. They allocate nothing for canonical codes, except
// Vaccine, which copies its (one- or two-element) Groups slice so that callers cannot change the
// shared set.

func BenchmarkVaccine(b *testing.B) {
	set := codes.Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := set.Vaccine("140"); !ok {
			b.Fatal("140 not found")
		}
	}
}

func BenchmarkIsProduct(b *testing.B) {
	set := codes.Default()
	b.ReportAllocs()
	for b.Loop() {
		if !set.IsProduct("140", "SEQ") {
			b.Fatal("140/SEQ not a product")
		}
	}
}

func BenchmarkManufacturer(b *testing.B) {
	set := codes.Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := set.Manufacturer("PMC"); !ok {
			b.Fatal("PMC not found")
		}
	}
}

func BenchmarkNDC(b *testing.B) {
	set := codes.Default()
	for _, code := range []string{"49281-0425-50", "4928142550"} {
		b.Run(code, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := set.NDC(code); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

// What the first call to Default costs.
func BenchmarkUnmarshalSnapshot(b *testing.B) {
	data, err := codes.Default().MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codes.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImportFixture(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := codes.ImportDir(codes.Default(), "testdata/cdc"); err != nil {
			b.Fatal(err)
		}
	}
}
