package report

import (
	"slices"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// Facts are what the reports read from one message: what kind of vaccination events it reports,
// how complete its administered doses are, and how long after administration it arrived.
// Extract fills them from a parsed message without allocating.
type Facts struct {
	Orders       int // RXA segments
	Administered int // doses given by the site: RXA-9 00 (or empty), not refused, not CVX 998, not RXA-21 D
	Historical   int // RXA-9 01..08
	Refusals     int // RXA-20 RE
	Immunity     int // CVX 998 with an OBX 59784-9
	NextOfKin    int // NK1 segments

	// AgeYears is the patient's age at the first administration date (RXA-3) from PID-7;
	// HasAge is false when either date is missing or not a date.
	AgeYears float64
	HasAge   bool

	// Completeness of the administered doses: how many have each item.
	WithLot     int // RXA-15
	WithMVX     int // RXA-17
	WithFunding int // OBX 64994-7 (funding program eligibility)
	WithVIS     int // OBX 29769-7 (VIS presented date) or 69764-9 (VIS bar code)
	// Completeness of the patient.
	Race      bool // PID-10
	Ethnicity bool // PID-22
	Address   bool // PID-11 with street and ZIP code

	// Timeliness of the administered doses: days from administration (RXA-3) to receipt, in
	// buckets, and their sum (for the mean). Set only when Extract is given a receipt time.
	Lag1, Lag7, Lag30, LagLate int // ≤1 day, 2–7, 8–30, more than 30 days
	LagDays                    int
}

// Timeliness buckets' upper bounds, in days.
const (
	lagBucket1  = 1
	lagBucket7  = 7
	lagBucket30 = 30
)

// fact is one fact a plan condition may test.
type fact struct {
	name     string
	optional bool // may be unknown: "present" applies
	get      func(*Facts) (float64, bool)
}

var factList = []fact{
	{"age_years", true, func(f *Facts) (float64, bool) { return f.AgeYears, f.HasAge }},
	{"rxa_count", false, func(f *Facts) (float64, bool) { return float64(f.Orders), true }},
	{"administered_count", false, func(f *Facts) (float64, bool) { return float64(f.Administered), true }},
	{"historical_count", false, func(f *Facts) (float64, bool) { return float64(f.Historical), true }},
	{"refusal_count", false, func(f *Facts) (float64, bool) { return float64(f.Refusals), true }},
	{"immunity_count", false, func(f *Facts) (float64, bool) { return float64(f.Immunity), true }},
	{"nk1_count", false, func(f *Facts) (float64, bool) { return float64(f.NextOfKin), true }},
}

var factByName = func() map[string]fact {
	m := map[string]fact{}
	for _, f := range factList {
		m[f.name] = f
	}
	return m
}()

// FactNames lists the facts a plan condition may name.
func FactNames() []string {
	out := make([]string, 0, len(factList))
	for _, f := range factList {
		out = append(out, f.name)
	}
	slices.Sort(out)
	return out
}

// order is the state of the order group (ORC, RXA, RXR, OBX...) being read.
type order struct {
	open         bool
	rxa          bool
	administered bool
	cvx998       bool
	refused      bool
	funding      bool
	vis          bool
	immunityObs  bool
}

// Extract reads the facts of m. receivedAt, when not zero, is when the message arrived, for
// timeliness.
func Extract(m *hl7.Message, receivedAt time.Time, f *Facts) {
	*f = Facts{}
	var (
		cur       order
		birth     int
		haveBirth bool
		firstDose int
		haveDose  bool
	)
	recvDay := 0
	if !receivedAt.IsZero() {
		y, mo, d := receivedAt.UTC().Date()
		recvDay = civilDays(y, int(mo), d)
	}
	closeOrder := func() {
		if !cur.open {
			return
		}
		if cur.administered {
			if cur.funding {
				f.WithFunding++
			}
			if cur.vis {
				f.WithVIS++
			}
		}
		if cur.cvx998 && cur.immunityObs {
			f.Immunity++
		}
		cur = order{}
	}
	for i := 0; i < m.NumSegments(); i++ {
		s := m.Segment(i)
		switch {
		case s.Is("PID"):
			f.Race = !s.Field(10).IsEmpty()
			f.Ethnicity = !s.Field(22).IsEmpty()
			addr := s.Field(11)
			f.Address = !addr.Component(1).IsEmpty() && !addr.Component(5).IsEmpty()
			birth, haveBirth = dateDays(s.Field(7).Component(1).Raw())
		case s.Is("NK1"):
			f.NextOfKin++
		case s.Is("ORC"):
			closeOrder()
			cur.open = true
		case s.Is("RXA"):
			if cur.rxa {
				// An RXA without its own ORC starts an order group of its own.
				closeOrder()
			}
			cur.open, cur.rxa = true, true
			f.Orders++
			source := s.Field(9).Component(1).Raw()
			status := string(s.Field(20).Component(1).Raw())
			cvx := string(s.Field(5).Component(1).Raw())
			cur.cvx998 = cvx == "998"
			cur.refused = status == "RE"
			switch {
			case string(s.Field(21).Component(1).Raw()) == "D":
				// A deletion reports no event: the dose it names was entered in error.
			case cur.refused:
				f.Refusals++
			case len(source) > 0 && string(source) != "00":
				f.Historical++
			case status != "NA" && !cur.cvx998:
				cur.administered = true
				f.Administered++
				if !s.Field(15).IsEmpty() {
					f.WithLot++
				}
				if !s.Field(17).Component(1).IsEmpty() {
					f.WithMVX++
				}
				if d, ok := dateDays(s.Field(3).Component(1).Raw()); ok {
					if !haveDose {
						firstDose, haveDose = d, true
					}
					if recvDay != 0 {
						lag := max(recvDay-d, 0)
						f.LagDays += lag
						switch {
						case lag <= lagBucket1:
							f.Lag1++
						case lag <= lagBucket7:
							f.Lag7++
						case lag <= lagBucket30:
							f.Lag30++
						default:
							f.LagLate++
						}
					}
				}
			}
			if !haveDose {
				if d, ok := dateDays(s.Field(3).Component(1).Raw()); ok {
					firstDose, haveDose = d, true
				}
			}
		case s.Is("OBX"):
			if !cur.open {
				continue
			}
			switch string(s.Field(3).Component(1).Raw()) {
			case "64994-7":
				cur.funding = true
			case "29769-7", "69764-9":
				cur.vis = true
			case "59784-9":
				cur.immunityObs = true
			}
		}
	}
	closeOrder()
	if haveBirth && haveDose && firstDose >= birth {
		f.AgeYears, f.HasAge = float64(firstDose-birth)/365.25, true
	}
}

// dateDays reads the YYYYMMDD start of an HL7 date/time as days since 1970-01-01.
func dateDays(b []byte) (int, bool) {
	if len(b) < 8 {
		return 0, false
	}
	n := [3]int{}
	widths := [3]int{4, 2, 2}
	pos := 0
	for k, w := range widths {
		for j := 0; j < w; j++ {
			c := b[pos]
			if c < '0' || c > '9' {
				return 0, false
			}
			n[k] = n[k]*10 + int(c-'0')
			pos++
		}
	}
	y, mo, d := n[0], n[1], n[2]
	if y < 1800 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return 0, false
	}
	return civilDays(y, mo, d), true
}

// civilDays is the number of days from 1970-01-01 to the proleptic Gregorian date y-m-d
// (Howard Hinnant's days_from_civil).
func civilDays(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
