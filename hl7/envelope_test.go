package hl7

import (
	"reflect"
	"testing"
)

func TestReadEnvelopeSegment(t *testing.T) {
	// A batch with its own delimiters (# field, ! component), an escaped field separator in the
	// control ID and a second repetition that is not read.
	e := ReadEnvelopeSegment([]byte(`BHS#!~\&#EHR#Clinic!X9!L#REG APP##20240101####B\F\1~X`))
	if got := e.Components(4); !reflect.DeepEqual(got, []string{"Clinic", "X9", "L"}) {
		t.Errorf("BHS-4 = %q", got)
	}
	if got := e.Components(3); !reflect.DeepEqual(got, []string{"EHR"}) {
		t.Errorf("BHS-3 = %q", got)
	}
	if got := e.Components(6); got != nil {
		t.Errorf("empty BHS-6 = %q, want nil", got)
	}
	if got := e.Text(11); got != "B#1" {
		t.Errorf("BHS-11 = %q, want B#1", got)
	}
	// Fields 1 and 2 are the separator and encoding characters, not values; past the end, nothing.
	for _, n := range []int{1, 2, 40} {
		if got := e.Components(n); got != nil {
			t.Errorf("field %d = %q", n, got)
		}
	}
	// Invalid encoding characters are read as the standard ones; nothing in a short segment.
	if got := ReadEnvelopeSegment([]byte("FHS|AAAA|x^y")).Components(3); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("FHS-3 with bad encoding characters = %q", got)
	}
	if got := ReadEnvelopeSegment(nil).Text(11); got != "" {
		t.Errorf("nil segment: %q", got)
	}
}
