package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mnistDir writes a tiny MNIST-format data set: 4 training and 2 test images
// of 2x3, the training files gzipped and the test files plain.
func mnistDir(t *testing.T) string {
	dir := t.TempDir()
	write(t, dir, trainImages+".gz", gz(idxFile(0x803, []int{4, 2, 3}, []byte{
		0, 255, 51, 0, 0, 0,
		1, 1, 1, 1, 1, 1,
		2, 2, 2, 2, 2, 2,
		3, 3, 3, 3, 3, 3,
	})))
	write(t, dir, trainLabels+".gz", gz(idxFile(0x801, []int{4}, []byte{9, 0, 3, 3})))
	write(t, dir, testImages, idxFile(0x803, []int{2, 2, 3}, seq(12)))
	write(t, dir, testLabels, idxFile(0x801, []int{2}, []byte{1, 2}))
	return dir
}

func TestLoadMNISTDir(t *testing.T) {
	dir := mnistDir(t)
	train, test, err := LoadMNISTDir(dir)
	require.NoError(t, err)
	assert.Equal(t, "mnist train", train.Name)
	assert.Equal(t, []int{4, 1, 2, 3, 10}, []int{train.N, train.C, train.H, train.W, train.Classes})
	assert.Equal(t, []int{2, 1, 2, 3, 10}, []int{test.N, test.C, test.H, test.W, test.Classes})
	assert.Equal(t, []float32{0, 1, 0.2, 0, 0, 0}, train.Image(0))
	assert.Equal(t, []int32{9, 0, 3, 3}, train.Labels)
	assert.Equal(t, []int32{1, 2}, test.Labels)
	assert.InDelta(t, 11.0/255, test.Image(1)[5], 1e-7)
}

func TestLoadMNISTDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) // breaks a good data set
		err   string
	}{
		{"missing file", func(dir string) { os.Remove(filepath.Join(dir, testLabels)) },
			"load data set: DIR has no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz; download the IDX files or pass another directory"},
		{"count mismatch", func(dir string) {
			os.WriteFile(filepath.Join(dir, testLabels), idxFile(0x801, []int{3}, []byte{1, 2, 3}), 0o644)
		}, "load data set: DIR/t10k-labels-idx1-ubyte has 3 labels but DIR/t10k-images-idx3-ubyte has 2 images; the files do not belong together"},
		{"label out of range", func(dir string) {
			os.WriteFile(filepath.Join(dir, testLabels), idxFile(0x801, []int{2}, []byte{1, 10}), 0o644)
		}, "read DIR/t10k-labels-idx1-ubyte: label 10 at index 1 is out of range [0, 10)"},
		{"size mismatch", func(dir string) {
			os.WriteFile(filepath.Join(dir, testImages), idxFile(0x803, []int{2, 3, 2}, seq(12)), 0o644)
		}, "load data set: test images are 3x2 but training images are 2x3"},
		{"corrupt file", func(dir string) {
			os.WriteFile(filepath.Join(dir, testImages), idxFile(0x803, []int{2, 2, 3}, seq(7)), 0o644)
		}, "read DIR/t10k-images-idx3-ubyte: truncated: header says 2 images of 2x3 (12 bytes) but only 7 bytes follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mnistDir(t)
			tt.setup(dir)
			_, _, err := LoadMNISTDir(dir)
			require.Error(t, err)
			assert.Equal(t, tt.err, replaceAll(err.Error(), dir, "DIR"))
		})
	}
	_, _, err := LoadMNISTDir(filepath.Join(t.TempDir(), "nowhere"))
	assert.ErrorContains(t, err, "no such file or directory")
	f := write(t, t.TempDir(), "file", nil)
	_, _, err = LoadMNISTDir(f)
	assert.ErrorContains(t, err, "is not a directory")
}

func replaceAll(s, old, new string) string {
	for {
		i := indexOf(s, old)
		if i < 0 {
			return s
		}
		s = s[:i] + new + s[i+len(old):]
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestFashionMNISTEmbedded(t *testing.T) {
	train, test, err := FashionMNISTEmbedded()
	require.NoError(t, err)
	for _, tt := range []struct {
		ds       *Dataset
		n, class int
	}{{train, 6000, 600}, {test, 1000, 100}} {
		assert.Equal(t, []int{tt.n, 1, 28, 28, 10}, []int{tt.ds.N, tt.ds.C, tt.ds.H, tt.ds.W, tt.ds.Classes}, tt.ds.Name)
		assert.Len(t, tt.ds.Images, tt.n*784)
		counts := make([]int, 10)
		for _, l := range tt.ds.Labels {
			counts[l]++
		}
		for c, k := range counts {
			assert.Equal(t, tt.class, k, "%s: class %d", tt.ds.Name, c)
		}
		lo, hi := float32(1), float32(0)
		for _, v := range tt.ds.Images {
			lo, hi = min(lo, v), max(hi, v)
		}
		assert.Equal(t, float32(0), lo)
		assert.Equal(t, float32(1), hi)
	}
}

func TestEmbeddedSize(t *testing.T) {
	entries, err := embedded.ReadDir("fashionmnist")
	require.NoError(t, err)
	total := 0
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		total += int(fi.Size())
	}
	assert.Len(t, entries, 4)
	assert.LessOrEqual(t, total, 5<<20, "the embedded subset is over its 5 MB budget")
}

func TestFashionMNIST(t *testing.T) {
	dir := mnistDir(t)
	train, _, source, err := FashionMNIST(dir)
	require.NoError(t, err)
	assert.Equal(t, dir, source)
	assert.Equal(t, "fashion-mnist train", train.Name)

	_, _, _, err = FashionMNIST(filepath.Join(dir, "absent"))
	assert.ErrorContains(t, err, "no such file or directory")

	if testing.Short() {
		t.Skip("skipping the system data set in short mode")
	}
	train, test, source, err := FashionMNIST("")
	require.NoError(t, err)
	if hasIDXFiles(SystemFashionMNIST) {
		assert.Equal(t, SystemFashionMNIST, source)
		assert.Equal(t, 60000, train.N)
		assert.Equal(t, 10000, test.N)
	} else {
		assert.Equal(t, embeddedSource, source)
		assert.Equal(t, 6000, train.N)
	}
}
