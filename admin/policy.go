package admin

import (
	"crypto/rand"
	"math/big"
	"net/mail"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Password policy (MIIS/MIIC): 12 to 30 characters, at least one uppercase letter, one
// lowercase letter, one digit and one special character; case sensitive.
const (
	PasswordMinLen = 12
	PasswordMaxLen = 30
)

// CheckPassword applies the password policy. username, when not empty, may not appear in the
// password. The error lists every rule the password breaks.
func CheckPassword(pw, username string) error {
	var problems []string
	n := utf8.RuneCountInString(pw)
	if n < PasswordMinLen || n > PasswordMaxLen {
		problems = append(problems, "be 12 to 30 characters long")
	}
	var upper, lower, digit, special, control bool
	for _, r := range pw {
		switch {
		case unicode.IsControl(r) || r == utf8.RuneError:
			control = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsLetter(r) || unicode.IsSpace(r):
		default:
			special = true
		}
	}
	if !upper {
		problems = append(problems, "contain an uppercase letter")
	}
	if !lower {
		problems = append(problems, "contain a lowercase letter")
	}
	if !digit {
		problems = append(problems, "contain a digit")
	}
	if !special {
		problems = append(problems, "contain a special character (such as ! # $ % & * - _ ?)")
	}
	if control {
		problems = append(problems, "not contain control characters")
	}
	if len(username) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(username)) {
		problems = append(problems, "not contain the username")
	}
	if len(problems) > 0 {
		return ErrWeakPassword.with("the password must %s", strings.Join(problems, ", "))
	}
	return nil
}

// checkSenderSecret is the rule for SOAP sender passwords, which machines keep: long enough, no
// control characters; no character classes required so that EHR vendors' generated secrets fit.
func checkSenderSecret(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < 12 || n > 128 {
		return ErrWeakPassword.with("a sender password must be 12 to 128 characters long")
	}
	for _, r := range pw {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ErrWeakPassword.with("a sender password may not contain control characters")
		}
	}
	return nil
}

// GeneratePassword returns a random password of 16 characters that meets the policy, for
// bootstrap, resets and sender credentials when none is given.
func GeneratePassword() (string, error) {
	const (
		uppers   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lowers   = "abcdefghijkmnopqrstuvwxyz"
		digits   = "23456789"
		specials = "!#%*+-=?@_"
		all      = uppers + lowers + digits + specials
	)
	pick := func(set string) (byte, error) {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return 0, err
		}
		return set[i.Int64()], nil
	}
	b := make([]byte, 0, 16)
	for _, set := range []string{uppers, lowers, digits, specials} {
		c, err := pick(set)
		if err != nil {
			return "", err
		}
		b = append(b, c)
	}
	for len(b) < 16 {
		c, err := pick(all)
		if err != nil {
			return "", err
		}
		b = append(b, c)
	}
	// Shuffle so the class order is not predictable.
	for i := len(b) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		b[i], b[j.Int64()] = b[j.Int64()], b[i]
	}
	return string(b), nil
}

// GenericUsernames are words that name a role, a place, a device or nobody in particular.
// Accounts are personal, so a username made only of these words (ignoring case, digits and the
// separators . _ - @) is refused: "nurse2", "front.desk", "ClinicStaff", "test_user". A username
// may contain them next to a name ("nurse.jsmith" is personal).
var GenericUsernames = strings.Fields(`admin user users test tester testing guest demo temp tmp
	staff nurse nurses doctor doc clinic clinician office front desk frontdesk reception
	receptionist shared share team group general default root system operator support help
	helpdesk info registry vaxgate manager supervisor billing pharmacy pharmacist lab school
	account anonymous everyone public owner login physician provider immunization immunizations
	vaccine vaccines vaccinator records webmaster postmaster service interface ehr emr
	superuser null none unknown nobody main primary backup station desk counter nursing
	ma rn lpn md np pa it`)

var genericNames = map[string]bool{}

func init() {
	for _, n := range GenericUsernames {
		genericNames[n] = true
	}
}

// foldUsername is how usernames compare: lower case, without the separators . _ -
// ("J.Smith", "j_smith" and "jsmith" are one username).
func foldUsername(u string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, u)
}

// onlyGeneric reports whether letters (a username's letters) are one generic word or a run of
// generic words of at least three letters ("clinicstaff" = clinic + staff).
func onlyGeneric(letters string) bool {
	if letters == "" || genericNames[letters] {
		return true
	}
	n := len(letters)
	ok := make([]bool, n+1) // ok[i]: letters[:i] splits into generic words
	ok[0] = true
	for i := 1; i <= n; i++ {
		for j := 0; j <= i-3 && !ok[i]; j++ {
			ok[i] = ok[j] && genericNames[letters[j:i]]
		}
	}
	return ok[n]
}

// CheckUsername applies the username rules: 3 to 64 characters, starting with a letter, letters,
// digits and . _ - @ only; no "admin" anywhere, whatever the case and separators ("Ad.Min"); not
// made only of generic words (GenericUsernames). Usernames are unique regardless of case and of
// the separators . _ - (the store enforces it).
func CheckUsername(u string) error {
	if len(u) < 3 || len(u) > 64 {
		return ErrInvalidUsername.with("username must be 3 to 64 characters long")
	}
	for i, r := range u {
		ok := r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r))
		if !ok {
			return ErrInvalidUsername.with("username may contain only letters, digits and . _ - @")
		}
		if i == 0 && !unicode.IsLetter(r) {
			return ErrInvalidUsername.with("username must start with a letter")
		}
	}
	if strings.Contains(strings.ReplaceAll(foldUsername(u), "@", ""), "admin") {
		return ErrInvalidUsername.with("username may not contain %q", "admin")
	}
	letters := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, u)
	if onlyGeneric(letters) {
		return ErrInvalidUsername.with("username %q is generic: accounts are personal (use e.g. first initial and last name)", u)
	}
	return nil
}

// checkName validates a person's first or last name.
func checkName(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", Invalid("%s is required", field)
	}
	if utf8.RuneCountInString(v) > 100 || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", Invalid("%s must be up to 100 printable characters", field)
	}
	return v, nil
}

// checkEmail validates a bare email address.
func checkEmail(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", Invalid("email is required")
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v || len(v) > 254 || !strings.Contains(v, "@") {
		return "", Invalid("email %q is not a valid address", v)
	}
	return v, nil
}

// checkPhone validates an optional phone number.
func checkPhone(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > 40 || strings.IndexFunc(v, func(r rune) bool { return !strings.ContainsRune("0123456789+-() .xX", r) }) >= 0 {
		return "", Invalid("phone %q may contain only digits, spaces and + - ( ) . x", v)
	}
	return v, nil
}

// checkCode validates an organization or site code (PIN).
func checkCode(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return "", Invalid("%s must be 1 to 64 characters", field)
	}
	for _, r := range v {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-", r))) {
			return "", Invalid("%s %q may contain only letters, digits and . _ -", field, v)
		}
	}
	return v, nil
}

// checkLabel validates a display name (organization, site) or free text.
func checkLabel(field, v string, max int, required bool) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" && required {
		return "", Invalid("%s is required", field)
	}
	if utf8.RuneCountInString(v) > max || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", Invalid("%s must be up to %d printable characters", field, max)
	}
	return v, nil
}

// CheckFacilityID validates an MSH-4 identifier (HD-1 namespace ID or HD-2 universal ID): not
// empty, at most 199 characters, no HL7 delimiters, no control characters.
func CheckFacilityID(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 199 || strings.ContainsAny(v, "|^~\\&\r\n") || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", Invalid("facility identifier %q must be 1 to 199 characters without HL7 delimiters", v)
	}
	return v, nil
}

// normalizeCIDR accepts "10.0.0.0/8", "2001:db8::/32" or a bare address (a single host).
func normalizeCIDR(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String(), nil
	}
	return "", Invalid("source address %q is not an IP address or CIDR range", v)
}
