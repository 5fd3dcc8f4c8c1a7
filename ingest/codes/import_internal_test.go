package codes

import (
	"io"
	"strings"
	"testing"
)

// Oversized uploads are refused after reading one byte more than the limit, not whole.
func TestImportTooLarge(t *testing.T) {
	defer func(n int64) { maxFileSize = n }(maxFileSize)
	maxFileSize = 1 << 10
	var r countingReader
	_, _, err := ImportReaders(nil, map[string]io.Reader{"big.txt": &r})
	if err == nil || !strings.Contains(err.Error(), "big.txt: larger than") {
		t.Errorf("oversized upload: %v", err)
	}
	if r.n > 64<<10 {
		t.Errorf("read %d bytes of an endless upload", r.n)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += len(p)
	return len(p), nil
}
