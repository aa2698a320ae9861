package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idxFile returns an IDX file of unsigned bytes with the given magic, dims
// and body.
func idxFile(magic uint32, dims []int, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, body...)
}

func gz(b []byte) []byte {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

func TestReadIDXImages(t *testing.T) {
	good := idxFile(0x803, []int{3, 2, 2}, seq(12))
	tests := []struct {
		name string
		file []byte
		err  string // empty: want 3 images of 2x2 holding 0..11
	}{
		{"train-images-idx3-ubyte", good, ""},
		// gzip is told by its magic bytes, whatever the name says
		{"gzipped-without-suffix", gz(good), ""},
		{"plain.gz", good, ""},
		{"trailing-data", append(append([]byte(nil), good...), 1, 2, 3), ""},
		{"wrong-magic", idxFile(0x12345678, []int{3, 2, 2}, seq(12)), "wrong magic 0x12345678, want 0x00000803 (is this an IDX image file?)"},
		{"labels-not-images", idxFile(0x801, []int{3}, seq(3)), "wrong magic 0x00000801, want 0x00000803 (is this an IDX image file?)"},
		{"truncated", idxFile(0x803, []int{60000, 28, 28}, seq(1234)), "truncated: header says 60000 images of 28x28 (47040000 bytes) but only 1234 bytes follow"},
		{"truncated.gz", gz(idxFile(0x803, []int{60000, 28, 28}, seq(1234))), "truncated: header says 60000 images of 28x28 (47040000 bytes) but only 1234 bytes follow"},
		{"gzip-cut-short", gz(good)[:20], "truncated"},
		{"short-header", good[:9], "truncated: only 9 bytes, shorter than the 16-byte IDX image header"},
		{"empty", nil, "truncated: only 0 bytes"},
		{"implausible", idxFile(0x803, []int{0xffffffff, 0xffffffff, 0xffffffff}, nil), "header says 4294967295 images of 4294967295x4294967295, more than cnnc loads (is this an IDX image file?)"},
		{"bad-gzip", []byte{0x1f, 0x8b, 0, 0, 0}, "bad gzip header"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, dir, tt.name, tt.file)
			data, n, h, w, err := ReadIDXImages(path)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, []int{3, 2, 2}, []int{n, h, w})
				assert.Equal(t, seq(12), data)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "read "+path+": "+tt.err)
		})
	}
	_, _, _, _, err := ReadIDXImages(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "no such file")
}

func TestReadIDXLabels(t *testing.T) {
	good := idxFile(0x801, []int{5}, []byte{0, 1, 2, 9, 3})
	tests := []struct {
		name string
		file []byte
		err  string
	}{
		{"plain", good, ""},
		{"gzip", gz(good), ""},
		{"wrong-magic", idxFile(0x803, []int{5, 1, 1}, seq(5)), "wrong magic 0x00000803, want 0x00000801 (is this an IDX label file?)"},
		{"truncated", idxFile(0x801, []int{60000}, seq(12)), "truncated: header says 60000 labels (60000 bytes) but only 12 bytes follow"},
		{"short-header", good[:6], "truncated: only 6 bytes, shorter than the 8-byte IDX label header"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, dir, tt.name, tt.file)
			labels, err := ReadIDXLabels(path)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, []byte{0, 1, 2, 9, 3}, labels)
				return
			}
			assert.EqualError(t, err, "read "+path+": "+tt.err)
		})
	}
}

func TestIDXCorruptionNeverPanics(t *testing.T) {
	files := [][]byte{
		idxFile(0x803, []int{4, 3, 3}, seq(36)),
		gz(idxFile(0x803, []int{4, 3, 3}, seq(36))),
	}
	seed := uint64(1)
	next := func(n int) int { // a tiny LCG keeps this test free of runtime
		seed = seed*6364136223846793005 + 1442695040888963407
		return int((seed >> 33) % uint64(n))
	}
	for i := range 3000 {
		b := append([]byte(nil), files[i%2]...)
		if i%3 == 0 {
			b = b[:next(len(b))]
		} else {
			b[next(len(b))] ^= byte(1 << next(8))
		}
		decodeIDXImages(bytes.NewReader(b))
		decodeIDXLabels(bytes.NewReader(b))
	}
}
