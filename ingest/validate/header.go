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
	msh := r.m.Segment(0)
	if r.d != hl7.DefaultDelimiters {
		r.report(ruleMSH2Value, 0, r.loc(0, 2, 0, 0), args{value: "'" + r.d.String() + "'"})
	}
	if st := msh.Field(9).Component(3).Raw(); string(st) != "VXU_V04" {
		r.report(ruleMSH9Structure, 0, r.loc(0, 9, 0, 3), args{value: quote(msh.Field(9).Rep(1).Raw())})
	}
	if v := msh.Field(15).Rep(1).Raw(); len(v) > 0 && string(v) != "ER" {
		r.report(ruleMSH15Value, 0, r.loc(0, 15, 0, 0), args{value: quote(v)})
	}
	if v := msh.Field(16).Rep(1).Raw(); len(v) > 0 && string(v) != "AL" {
		r.report(ruleMSH16Value, 0, r.loc(0, 16, 0, 0), args{value: quote(v)})
	}
	if f := msh.Field(21); !f.IsEmpty() {
		z22 := false
		for k, rep := range f.Reps() {
			if k > maxReps {
				break
			}
			if bytes.Equal(rep.Component(1).Raw(), []byte("Z22")) {
				z22 = true
				break
			}
		}
		if !z22 {
			r.report(ruleMSH21Profile, 0, r.loc(0, 21, 1, 1), args{value: quote(f.Rep(1).Raw())})
		}
	}
	if t, ok := parseDTM(msh.Field(7).Component(1).Raw()); ok && t.digits >= 8 {
		r.msgDate = t.date
		if t.date.days() > r.today.days()+1 {
			r.report(ruleMessageFuture, 0, ack.Location{Segment: "MSH", Sequence: 1, Field: 7}, args{value: t.date.String()})
		}
	}
}
