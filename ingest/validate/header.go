package validate

import (
	"bytes"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// header checks the MSH values the pipeline's header checks leave to validation: delimiters,
// message structure, acknowledgment types, the message profile and the message date. MSH-9.1/9.2,
// MSH-11 and MSH-12 decide whether the message is processed at all and are the pipeline's.
func (r *run) header() {
	if len(r.segs) == 0 || r.segs[0].def != segMSH {
		return
	}
	if r.d != hl7.DefaultDelimiters {
		r.report(ruleMSH2Value, 0, r.loc(0, 2, 0, 0), args{value: "'" + r.d.String() + "'"})
	}
	if st := r.fcomp(0, 9, 3); string(st) != "VXU_V04" {
		r.report(ruleMSH9Structure, 0, r.loc(0, 9, 0, 3), args{value: quote(r.rep1(0, 9))})
	}
	if v := r.rep1(0, 15); len(v) > 0 && string(v) != "ER" {
		r.report(ruleMSH15Value, 0, r.loc(0, 15, 0, 0), args{value: quote(v)})
	}
	if v := r.rep1(0, 16); len(v) > 0 && string(v) != "AL" {
		r.report(ruleMSH16Value, 0, r.loc(0, 16, 0, 0), args{value: quote(v)})
	}
	if f := r.fld(0, 21); len(f) > 0 {
		z22 := false
		rest := f
		for k := 1; rest != nil; k++ {
			if k > maxReps {
				break
			}
			var rep []byte
			rep, rest = cut(rest, r.d.Repetition)
			if bytes.Equal(r.comp(rep, 1), []byte("Z22")) {
				z22 = true
				break
			}
		}
		if !z22 {
			r.report(ruleMSH21Profile, 0, r.loc(0, 21, 1, 1), args{value: quote(r.rep1(0, 21))})
		}
	}
	if t, ok := parseDTM(r.fcomp(0, 7, 1)); ok && t.digits >= 8 {
		r.msgDate = t.date
		if t.date.days() > r.today.days()+1 {
			r.report(ruleMessageFuture, 0, ack.Location{Segment: "MSH", Sequence: 1, Field: 7}, args{value: t.date.String()})
		}
	}
}
