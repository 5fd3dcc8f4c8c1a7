package validate

// Which state a ZIP code belongs to, by its first three digits, and the FIPS 5-2 code of each
// state. Written for this project from public knowledge of the USPS ZIP code prefixes (the
// three-digit sectional center areas; USPS publishes them in its National Five-Digit ZIP Code and
// Post Office Directory and the L002 list) and of the FIPS state codes; not copied from any
// dataset. A few prefixes are shared by more than one state or territory (967: Hawaii and
// American Samoa; 969: Guam and the northern Pacific territories): both are accepted. Prefixes
// the table does not know are not checked.

// zipRange maps the ZIP prefixes lo..hi (inclusive) to one or more state codes.
type zipRange struct {
	lo, hi int
	states string // USPS codes separated by spaces
}

var zipRanges = []zipRange{
	{5, 5, "NY"}, {6, 7, "PR"}, {8, 8, "VI"}, {9, 9, "PR"},
	{10, 27, "MA"}, {28, 29, "RI"}, {30, 38, "NH"}, {39, 49, "ME"},
	{50, 54, "VT"}, {55, 55, "MA"}, {56, 59, "VT"}, {60, 69, "CT"},
	{70, 89, "NJ"}, {90, 98, "AE"}, {100, 149, "NY"}, {150, 196, "PA"},
	{197, 199, "DE"}, {200, 200, "DC"}, {201, 201, "VA"}, {202, 205, "DC"},
	{206, 219, "MD"}, {220, 246, "VA"}, {247, 268, "WV"}, {270, 289, "NC"},
	{290, 299, "SC"}, {300, 319, "GA"}, {320, 339, "FL"}, {340, 340, "AA"},
	{341, 349, "FL"}, {350, 369, "AL"}, {370, 385, "TN"}, {386, 397, "MS"},
	{398, 399, "GA"}, {400, 427, "KY"}, {430, 459, "OH"}, {460, 479, "IN"},
	{480, 499, "MI"}, {500, 528, "IA"}, {530, 549, "WI"}, {550, 567, "MN"},
	{570, 577, "SD"}, {580, 588, "ND"}, {590, 599, "MT"}, {600, 629, "IL"},
	{630, 658, "MO"}, {660, 679, "KS"}, {680, 693, "NE"}, {700, 714, "LA"},
	{716, 729, "AR"}, {730, 732, "OK"}, {733, 733, "TX"}, {734, 749, "OK"},
	{750, 799, "TX"}, {800, 816, "CO"}, {820, 831, "WY"}, {832, 838, "ID"},
	{840, 847, "UT"}, {850, 865, "AZ"}, {870, 884, "NM"}, {885, 885, "TX"},
	{889, 898, "NV"}, {900, 961, "CA"}, {962, 966, "AP"}, {967, 968, "HI AS"},
	{969, 969, "GU MP PW FM MH"}, {970, 979, "OR"}, {980, 994, "WA"}, {995, 999, "AK"},
}

// zipStates returns the states of a ZIP code's prefix ("" when unknown); zip is 5 or more digits.
func zipStates(zip []byte) string {
	if len(zip) < 3 || !isDigits(zip[:3]) {
		return ""
	}
	p := int(zip[0]-'0')*100 + int(zip[1]-'0')*10 + int(zip[2]-'0')
	lo, hi := 0, len(zipRanges)
	for lo < hi {
		mid := (lo + hi) / 2
		switch z := &zipRanges[mid]; {
		case p < z.lo:
			hi = mid
		case p > z.hi:
			lo = mid + 1
		default:
			return z.states
		}
	}
	return ""
}

// hasState reports whether the space-separated list states holds st.
func hasState(states string, st []byte) bool {
	if len(st) != 2 {
		return false
	}
	for i := 0; i+2 <= len(states); i += 3 {
		if states[i] == st[0] && states[i+1] == st[1] {
			return true
		}
	}
	return false
}

// fipsStates maps FIPS 5-2 state codes to USPS codes.
var fipsStates = map[string]string{
	"01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE",
	"11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA",
	"20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN",
	"28": "MS", "29": "MO", "30": "MT", "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM",
	"36": "NY", "37": "NC", "38": "ND", "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI",
	"45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA",
	"54": "WV", "55": "WI", "56": "WY", "60": "AS", "64": "FM", "66": "GU", "68": "MH", "69": "MP",
	"70": "PW", "72": "PR", "74": "UM", "78": "VI",
}
