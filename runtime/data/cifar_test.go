package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cifarRecordBytes returns record r of file f of a synthetic CIFAR-10: label
// (f*3+r)%10 and pixel j equal to (f+r+j)%256.
func cifarRecordBytes(f, r int) []byte {
	b := make([]byte, cifarRecord)
	b[0] = byte((f*3 + r) % 10)
	for j := range cifarPixels {
		b[1+j] = byte((f + r + j) % 256)
	}
	return b
}

// writeCIFAR writes the six files into dir, file f holding records[f]
// records, and returns dir.
func writeCIFAR(t *testing.T, dir string, records []int) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	names := append(append([]string{}, cifarTrainFiles...), cifarTestFile)
	for f, name := range names {
		var b []byte
		for r := range records[f] {
			b = append(b, cifarRecordBytes(f, r)...)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	return dir
}

func TestLoadCIFAR10(t *testing.T) {
	records := []int{2, 1, 3, 1, 2, 4}
	dir := writeCIFAR(t, t.TempDir(), records)
	train, test, err := LoadCIFAR10(dir)
	require.NoError(t, err)
	assert.Equal(t, 9, train.N)
	assert.Equal(t, 4, test.N)
	for _, d := range []*Dataset{train, test} {
		assert.Equal(t, []int{3, 32, 32, 10}, []int{d.C, d.H, d.W, d.Classes})
		assert.Equal(t, CIFAR10ClassNames, d.ClassNames)
		assert.Len(t, d.Images, d.N*cifarPixels)
	}
	assert.Equal(t, "cifar-10 train", train.Name)
	// The training set is the five batches in order.
	i := 0
	for f := range 5 {
		for r := range records[f] {
			want := cifarRecordBytes(f, r)
			assert.Equal(t, int32(want[0]), train.Labels[i], "sample %d", i)
			img := train.Image(i)
			for _, j := range []int{0, 1, 1023, 1024, 2048, 3071} { // CHW as in the file
				assert.Equal(t, float32(want[1+j])/255, img[j], "sample %d value %d", i, j)
			}
			i++
		}
	}
	assert.Equal(t, int32(cifarRecordBytes(5, 3)[0]), test.Labels[3])
	assert.Equal(t, float32(cifarRecordBytes(5, 3)[1+100])/255, test.Image(3)[100])
}

func TestLoadCIFAR10Subdir(t *testing.T) {
	root := t.TempDir()
	dir := writeCIFAR(t, filepath.Join(root, cifarSubdir), []int{1, 1, 1, 1, 1, 1})
	names := "a\nb\nc\nd\ne\n\nf\ng\nh\ni\nj\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte(names), 0o644))
	train, _, err := LoadCIFAR10(root)
	require.NoError(t, err)
	assert.Equal(t, 5, train.N)
	assert.Equal(t, strings.Fields(names), train.ClassNames)
}

func TestLoadCIFAR10Errors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) // breaks a good data set in dir
		err   string
	}{
		{"missing", func(dir string) { os.Remove(filepath.Join(dir, "test_batch.bin")) },
			"test_batch.bin is missing; download the binary version (cifar-10-binary.tar.gz)"},
		{"size", func(dir string) {
			os.WriteFile(filepath.Join(dir, "data_batch_3.bin"), make([]byte, cifarRecord+1), 0o644)
		}, "data_batch_3.bin has 3074 bytes, not a positive multiple of the 3073-byte record"},
		{"empty", func(dir string) { os.WriteFile(filepath.Join(dir, "data_batch_1.bin"), nil, 0o644) },
			"data_batch_1.bin has 0 bytes"},
		{"label", func(dir string) {
			b := append(cifarRecordBytes(0, 0), cifarRecordBytes(0, 1)...)
			b[cifarRecord] = 10
			os.WriteFile(filepath.Join(dir, "data_batch_2.bin"), b, 0o644)
		}, "data_batch_2.bin: record 1 has label 10, want 0 to 9"},
		{"meta", func(dir string) { os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte("cat\ndog\n"), 0o644) },
			"batches.meta.txt lists 2 class names, want 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeCIFAR(t, t.TempDir(), []int{1, 1, 1, 1, 1, 1})
			tt.setup(dir)
			_, _, err := LoadCIFAR10(dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	_, _, err := LoadCIFAR10(filepath.Join(t.TempDir(), "nope"))
	assert.ErrorContains(t, err, "load cifar-10: stat")
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, _, err = LoadCIFAR10(file)
	assert.ErrorContains(t, err, "is not a directory; pass the directory that holds data_batch_1.bin")
}
