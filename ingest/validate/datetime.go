package validate

import (
	"strconv"
	"time"
)

// date is a calendar date as the number yyyymmdd: dates compare as integers and print as HL7
// writes them. 0 means no date.
type date int32

func mkDate(y, m, d int) date { return date(y*10000 + m*100 + d) }

func (d date) year() int  { return int(d) / 10000 }
func (d date) month() int { return int(d) / 100 % 100 }
func (d date) day() int   { return int(d) % 100 }

// days returns the day number of d (days since 1970-01-01), for differences between dates.
func (d date) days() int {
	// Howard Hinnant's days_from_civil.
	y, m, dd := d.year(), d.month(), d.day()
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + dd - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// String formats d as YYYYMMDD.
func (d date) String() string {
	var b [8]byte
	n := int(d)
	for i := 7; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[:])
}

func dateOf(t time.Time) date {
	y, m, d := t.Date() // one conversion, not one for each of Year, Month and Day
	return mkDate(y, int(m), d)
}

// ageText says how old someone born on birth is on d, the way clinicians say it: days under two
// months, months under two years, years after.
func ageText(birth, d date) string {
	days := d.days() - birth.days()
	months := monthsBetween(birth, d)
	switch {
	case days < 0:
		return "before birth"
	case months < 2:
		return itoa(days) + " days"
	case months < 24:
		return itoa(months) + " months"
	}
	return itoa(months/12) + " years"
}

// monthsBetween counts the whole months from a to b (a <= b).
func monthsBetween(a, b date) int {
	m := (b.year()-a.year())*12 + b.month() - a.month()
	if b.day() < a.day() {
		m--
	}
	return m
}

// addYears returns d moved n years later (Feb 29 becomes Mar 1 in common years).
func addYears(d date, n int) date {
	y, m, dd := d.year()+n, d.month(), d.day()
	if m == 2 && dd == 29 && !leap(y) {
		m, dd = 3, 1
	}
	return mkDate(y, m, dd)
}

func leap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if leap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// dtm is an HL7 DTM value: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
type dtm struct {
	date   date // with month and day 1 when the value is less precise
	digits int  // 4, 6, 8, 10, 12 or 14: how precise the value is, fractions aside
	tz     bool // a time zone offset is given
}

// parseDTM reads an HL7 DTM. It checks the calendar (month 1-12, day of that month, hour < 24,
// minute and second < 60, offset within ±14 hours) and accepts nothing else: no separators, no
// spaces.
func parseDTM(b []byte) (dtm, bool) {
	var v dtm
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	switch n {
	case 4, 6, 8, 10, 12, 14:
	default:
		return v, false
	}
	v.digits = n
	num := func(i, w int) int {
		x := 0
		for _, c := range b[i : i+w] {
			x = x*10 + int(c-'0')
		}
		return x
	}
	y, m, d := num(0, 4), 1, 1
	if n >= 6 {
		m = num(4, 2)
		if m < 1 || m > 12 {
			return v, false
		}
	}
	if n >= 8 {
		d = num(6, 2)
		if d < 1 || d > daysIn(y, m) {
			return v, false
		}
	}
	if y < 1 {
		return v, false
	}
	if n >= 10 && num(8, 2) > 23 || n >= 12 && num(10, 2) > 59 || n >= 14 && num(12, 2) > 59 {
		return v, false
	}
	v.date = mkDate(y, m, d)
	rest := b[n:]
	if len(rest) > 0 && rest[0] == '.' {
		if n != 14 {
			return v, false
		}
		k := 1
		for k < len(rest) && k <= 4 && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		if k == 1 {
			return v, false
		}
		rest = rest[k:]
	}
	if len(rest) > 0 {
		if len(rest) != 5 || rest[0] != '+' && rest[0] != '-' {
			return v, false
		}
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				return v, false
			}
		}
		hh := int(rest[1]-'0')*10 + int(rest[2]-'0')
		mm := int(rest[3]-'0')*10 + int(rest[4]-'0')
		if hh > 14 || mm > 59 {
			return v, false
		}
		v.tz = true
	}
	return v, true
}

// isNumber reports whether b is an HL7 NM: an optional sign, digits, at most one decimal point,
// at least one digit.
func isNumber(b []byte) bool {
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		b = b[1:]
	}
	digits, dots := 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// parseAmount reads a non-negative decimal NM as thousandths, for comparisons without floats.
func parseAmount(b []byte) (int64, bool) {
	if !isNumber(b) {
		return 0, false
	}
	neg := false
	if b[0] == '+' || b[0] == '-' {
		neg = b[0] == '-'
		b = b[1:]
	}
	var v int64
	frac := -1
	for _, c := range b {
		if c == '.' {
			frac = 0
			continue
		}
		if frac >= 0 {
			if frac == 3 {
				continue
			}
			frac++
		}
		if v > 1e15 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if frac < 0 {
		frac = 0
	}
	for ; frac < 3; frac++ {
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, true
}

func itoa(n int) string { return strconv.Itoa(n) }
