package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"

	"github.com/vaxgate/vaxgate/ack"
)

// archivedFindings is how a message's findings are archived: those its ACK lists (at most
// ack.DefaultMaxERR, errors first) as json in messages.findings, queryable as before, and the
// rest, when there are more, compactly in messages.more_findings (encodeFindings). A message of
// 120,000 junk segments is thus archived with every finding in a few hundred kilobytes instead of
// tens of megabytes of JSON, and building that row does not cost a copy per finding in JSON.
type archivedFindings struct {
	listed    []byte // json
	more      []byte // nil when the ACK lists them all
	moreCount int
}

func archiveFindings(fs []ack.Finding) (archivedFindings, error) {
	listed, omitted := ack.Listed(fs, ack.DefaultMaxERR)
	var a archivedFindings
	var err error
	a.listed = appendFindingsJSON(nil, listed)
	if omitted > 0 {
		if a.more, err = encodeFindings(ack.Omitted(fs, ack.DefaultMaxERR)); err != nil {
			return a, err
		}
		a.moreCount = omitted
	}
	return a, nil
}

// encodeFindings writes findings compactly: one line per finding, its fields separated by tabs —
// severity, code (0357), application code (0533), group, rule, location
// (segment^sequence^field^repetition^component^subcomponent), text — with backslash, tab, CR
// and LF escaped in the text (\\ \t \r \n), the whole gzip-compressed. Findings of one rule
// repeat most of their line, which compresses to a few bytes each.
func encodeFindings(fs iter.Seq[ack.Finding]) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("store: encode findings: %w", err)
	}
	w := bufio.NewWriter(zw)
	var line []byte
	for f := range fs {
		l := f.Location
		line = append(line[:0], f.Severity...)
		for _, n := range []int{int(f.Code), int(f.App), f.Group} {
			line = strconv.AppendInt(append(line, '\t'), int64(n), 10)
		}
		line = append(append(append(line, '\t'), escapeField(f.Rule)...), '\t')
		line = append(line, escapeField(l.Segment)...)
		for _, n := range []int{l.Sequence, l.Field, l.Rep, l.Component, l.Sub} {
			line = strconv.AppendInt(append(line, '^'), int64(n), 10)
		}
		line = append(append(append(line, '\t'), escapeField(f.Text)...), '\n')
		if _, err := w.Write(line); err != nil {
			return nil, fmt.Errorf("store: encode findings: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("store: encode findings: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("store: encode findings: %w", err)
	}
	return buf.Bytes(), nil
}

var fieldEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\r", `\r`, "\n", `\n`, "^", `\^`)

func escapeField(s string) string {
	if !strings.ContainsAny(s, "\\\t\r\n^") {
		return s
	}
	return fieldEscaper.Replace(s)
}

func unescapeField(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("escape at end of field")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case '^':
			b.WriteByte('^')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// maxDecodedFindings bounds what DecodeFindings returns, whatever the bytes claim.
const maxDecodedFindings = 10_000_000

// DecodeFindings reads messages.more_findings (see encodeFindings). A nil or empty input holds no
// findings.
func DecodeFindings(b []byte) ([]ack.Finding, error) {
	if len(b) == 0 {
		return nil, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("store: decode findings: %w", err)
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out []ack.Finding
	for line := 1; sc.Scan(); line++ {
		if len(out) == maxDecodedFindings {
			return nil, errors.New("store: decode findings: too many")
		}
		f, err := decodeFinding(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("store: decode findings: line %d: %w", line, err)
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("store: decode findings: %w", err)
	}
	return out, nil
}

func decodeFinding(line string) (ack.Finding, error) {
	var f ack.Finding
	parts := strings.Split(line, "\t")
	if len(parts) != 7 {
		return f, fmt.Errorf("%d fields, want 7", len(parts))
	}
	ints := make([]int, 3)
	for i, p := range parts[1:4] {
		n, err := strconv.Atoi(p)
		if err != nil {
			return f, fmt.Errorf("field %d: %w", i+2, err)
		}
		ints[i] = n
	}
	var err error
	f.Severity = ack.Severity(parts[0])
	f.Code, f.App, f.Group = ack.Code(ints[0]), ack.AppCode(ints[1]), ints[2]
	if f.Rule, err = unescapeField(parts[4]); err != nil {
		return f, err
	}
	if f.Location, err = decodeLocation(parts[5]); err != nil {
		return f, err
	}
	if f.Text, err = unescapeField(parts[6]); err != nil {
		return f, err
	}
	return f, nil
}

// decodeLocation reads segment^sequence^field^repetition^component^subcomponent: the last five ^
// are the separators (numbers hold none), whatever the escaped segment holds.
func decodeLocation(s string) (ack.Location, error) {
	var l ack.Location
	i := strings.LastIndex(s, "^")
	nums := make([]int, 0, 5)
	for range 5 {
		if i < 0 {
			return l, fmt.Errorf("location %q", s)
		}
		n, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return l, fmt.Errorf("location %q: %w", s, err)
		}
		nums = append(nums, n)
		s = s[:i]
		i = strings.LastIndex(s, "^")
	}
	seg, err := unescapeField(s)
	if err != nil {
		return l, err
	}
	l.Segment = seg
	l.Sub, l.Component, l.Rep, l.Field, l.Sequence = nums[0], nums[1], nums[2], nums[3], nums[4]
	return l, nil
}
