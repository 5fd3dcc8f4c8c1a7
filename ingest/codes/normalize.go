package codes

import "strings"

// NormalizeCVX returns the canonical form of a CVX code. The CDC writes CVX codes as digits, codes
// below 10 with one leading zero ("08" is hepatitis B, pediatric), the others without ("10",
// "140"); its text files pad them with trailing spaces, and senders drop or add zeros. So the
// canonical form is the digits without leading zeros, padded back to two digits: "8", "008" and
// " 08 " all become "08", and "0140" becomes "140". A code that is not all digits is returned
// trimmed and otherwise unchanged (it will not be found).
func NormalizeCVX(code string) string {
	code = strings.TrimSpace(code)
	if code == "" || !allDigits(code) {
		return code
	}
	if len(code) == 2 || (len(code) == 3 && code[0] != '0') {
		return code // already canonical: the common case allocates nothing
	}
	code = strings.TrimLeft(code, "0")
	switch len(code) {
	case 0:
		return "00"
	case 1:
		return "0" + code
	}
	return code
}

// NormalizeMVX returns the canonical form of an MVX code: trimmed, upper case.
func NormalizeMVX(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// NormalizeNDC returns an NDC in the 11-digit 5-4-2 form with hyphens that the CDC tables use
// ("49281-0425-50"). It accepts 11 digits with or without hyphens, and the FDA's 10-digit layouts
// with hyphens, which say where the missing zero goes: 4-4-2 (0006-4045-00 → 00006-4045-00),
// 5-3-2 (49281-425-50 → 49281-0425-50) and 5-4-1 (50090-7541-0 → 50090-7541-00). A '*' that some
// systems print in place of the padding zero counts as a zero. Ten digits without hyphens are
// ambiguous: NormalizeNDC refuses them and Set.NDC tries the three readings.
func NormalizeNDC(code string) (string, bool) {
	code = strings.TrimSpace(code)
	if len(code) == 13 && code[5] == '-' && code[10] == '-' &&
		allDigits(code[:5]) && allDigits(code[6:10]) && allDigits(code[11:]) {
		return code, true // already canonical: the common case allocates nothing
	}
	var seg [3]string
	n := 0
	for part := range strings.SplitSeq(code, "-") {
		if n == 3 {
			return "", false
		}
		seg[n] = part
		n++
	}
	switch n {
	case 1:
		d, ok := ndcDigits(code)
		if !ok || len(d) != 11 {
			return "", false
		}
		return d[:5] + "-" + d[5:9] + "-" + d[9:], true
	case 3:
		for i := range seg {
			d, ok := ndcDigits(seg[i])
			if !ok || d == "" {
				return "", false
			}
			seg[i] = d
		}
		l, p, k := len(seg[0]), len(seg[1]), len(seg[2])
		switch {
		case l == 5 && p == 4 && k == 2:
		case l == 4 && p == 4 && k == 2:
			seg[0] = "0" + seg[0]
		case l == 5 && p == 3 && k == 2:
			seg[1] = "0" + seg[1]
		case l == 5 && p == 4 && k == 1:
			seg[2] = "0" + seg[2]
		default:
			return "", false
		}
		return seg[0] + "-" + seg[1] + "-" + seg[2], true
	}
	return "", false
}

// ndc10Readings returns the three 11-digit readings of a 10-digit NDC written without hyphens,
// or nil if code is not ten digits.
func ndc10Readings(code string) []string {
	d, ok := ndcDigits(strings.TrimSpace(code))
	if !ok || len(d) != 10 {
		return nil
	}
	return []string{
		"0" + d[:4] + "-" + d[4:8] + "-" + d[8:], // 4-4-2
		d[:5] + "-0" + d[5:8] + "-" + d[8:],      // 5-3-2
		d[:5] + "-" + d[5:9] + "-0" + d[9:],      // 5-4-1
	}
}

// ndcDigits returns s with '*' read as '0', if s has only digits and asterisks.
func ndcDigits(s string) (string, bool) {
	if strings.IndexByte(s, '*') >= 0 {
		s = strings.ReplaceAll(s, "*", "0")
	}
	return s, allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
