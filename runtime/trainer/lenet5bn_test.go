package trainer

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/gen/lenet5bn"
	"github.com/cnnc/cnnc/runtime"
)

// TestResumeLeNet5BN resumes a generated model with batch-norm statistics
// and dropout, whose masks follow its step counter, and checks that the
// resumed run ends bit for bit where the uninterrupted one does.
func TestResumeLeNet5BN(t *testing.T) {
	newModel := func(seed uint64) Model { return lenet5bn.NewSeeded(seed) }
	dir := t.TempDir()
	straight, part := filepath.Join(dir, "straight.safetensors"), filepath.Join(dir, "part.safetensors")
	args := []string{"-limit", "320", "-seed", "11", "-augment", "flip,crop:2", "-schedule", "cosine:3", "-wd", "5e-4", "-metrics", "", "-metrics-csv", ""}
	whole, _, err := runModel(t, newModel, append([]string{"-epochs", "3", "-save", straight}, args...)...)
	require.NoError(t, err)
	_, _, err = runModel(t, newModel, append([]string{"-epochs", "1", "-save", part}, args...)...)
	require.NoError(t, err)
	rest, _, err := runModel(t, newModel, "-resume", part, "-epochs", "3")
	require.NoError(t, err)
	require.Equal(t, noTimes(whole.epochs[1:]), noTimes(rest.epochs))
	requireSameTensors(t, straight, part)
	_, meta, err := runtime.LoadTensors(part)
	require.NoError(t, err)
	require.Equal(t, "15", meta[dropoutKey], "3 epochs of 5 batches")
}
