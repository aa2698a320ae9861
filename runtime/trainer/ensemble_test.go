package trainer

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/runtime"
)

// TestScorerFlip checks -tta flip's scores on a model whose logits are the
// sums of the left and the right half of a 1x2x4 image: the mirror swaps
// them, so the mean of the two soft-maxes is 1/2 for both classes, while
// without flip the soft-max of the image's own logits stays.
func TestScorerFlip(t *testing.T) {
	predict := func(x []float32, n int) []float32 {
		logits := make([]float32, 2*n)
		for i := range n {
			img := x[i*8 : (i+1)*8]
			for r := range 2 {
				logits[2*i] += img[r*4] + img[r*4+1]
				logits[2*i+1] += img[r*4+2] + img[r*4+3]
			}
			clear(img) // predict may normalise x in place
		}
		return logits
	}
	img := []float32{1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0}
	for _, flip := range []bool{false, true} {
		s := newScorer(predict, 2, 3, 1, 2, 4, flip)
		got := s.scores(append([]float32(nil), img...), 2)
		want := make([]float32, 4)
		runtime.Softmax(want, []float32{2, 0, 0, 3}, 2, 2)
		if flip {
			want = []float32{0.5, 0.5, 0.5, 0.5}
		}
		require.InDeltaSlice(t, want, got, 1e-6, "flip %v", flip)
	}
}

// TestSnapshotEnsemble trains with a cosine schedule of 2-epoch periods,
// checks that the run saves a snapshot at the end of each period and
// evaluates the last two together, and that -eval-only -ensemble of those
// snapshots gives the same accuracy.
func TestSnapshotEnsemble(t *testing.T) {
	dir := t.TempDir()
	save := filepath.Join(dir, "lin.safetensors")
	res, out, err := runLinear(t, "-epochs", "5", "-limit", "600", "-schedule", "cosine:2", "-snapshots", "2", "-save", save, "-tta", "flip")
	require.NoError(t, err)
	for _, ep := range []int{2, 4} {
		require.FileExists(t, snapshotPath(save, ep))
	}
	for _, ep := range []int{1, 3, 5} {
		require.NoFileExists(t, snapshotPath(save, ep))
	}
	m := regexp.MustCompile(`snapshot ensemble of the models after epochs 2, 4: test accuracy (\S+)% \(600 images\)`).FindStringSubmatch(out)
	require.NotNil(t, m, "output:\n%s", out)
	acc, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.InDelta(t, 100*res.ensembleAcc, acc, 0.005)
	require.Greater(t, res.ensembleAcc, 0.6, "chance is 0.1")

	ens := snapshotPath(save, 2) + "," + snapshotPath(save, 4)
	again, out, err := runLinear(t, "-eval-only", "-ensemble", ens, "-limit", "600", "-tta", "flip")
	require.NoError(t, err)
	require.Contains(t, out, "ensemble of 2 models: test accuracy "+fmt.Sprintf("%.2f%%", 100*res.ensembleAcc))
	require.Equal(t, res.ensembleAcc, again.testAcc)

	// The run's own model is the last epoch's, not a snapshot's.
	last, _, err := runLinear(t, "-eval-only", "-load", save, "-limit", "600", "-tta", "flip")
	require.NoError(t, err)
	require.Equal(t, res.testAcc, last.testAcc)
	_, err = os.Stat(save)
	require.NoError(t, err)
}
