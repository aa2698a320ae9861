package interop_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/gen/lenet5bn"
	"github.com/cnnc/cnnc/runtime"
)

// TestPyTorchWeightsPredict loads the state_dict of PyTorch's LeNet-BN
// (testdata/torchref/lenet_bn.safetensors, made by make_ref.py) into the
// generated lenet5bn, whose layers carry the same names, and checks that
// Predict gives PyTorch's eval-mode logits for the same images.
func TestPyTorchWeightsPredict(t *testing.T) {
	ref, _, err := runtime.LoadTensors(filepath.Join("..", "..", "testdata", "torchref", "lenet_bn.safetensors"))
	require.NoError(t, err)

	// Write the state_dict as PyTorch saves it, with the running
	// statistics after the reference's training forward, which its eval
	// logits use.
	m := lenet5bn.New()
	var state []*runtime.Param
	for _, p := range m.State() {
		name := p.Name
		if _, ok := ref["after."+name]; ok {
			name = "after." + name
		}
		tensor, ok := ref[name]
		require.True(t, ok, "the reference has no tensor %q", name)
		q := runtime.NewParam(p.Name, tensor.Shape, false)
		copy(q.Data, tensor.F32)
		state = append(state, q)
	}
	path := filepath.Join(t.TempDir(), "lenet_bn.safetensors")
	require.NoError(t, runtime.SaveTensors(path, state, nil))

	require.NoError(t, m.Load(path))
	x := ref["x"].F32
	got := m.Predict(x)
	want := ref["eval.logits"].F32
	require.Len(t, got, len(want))
	for i := range want {
		require.InDelta(t, float64(want[i]), float64(got[i]), 1e-4*max(1, math.Abs(float64(want[i]))), "logit %d", i)
	}

	// And back: what cnnc saves holds PyTorch's names and values.
	out := filepath.Join(t.TempDir(), "cnnc.safetensors")
	require.NoError(t, m.Save(out))
	saved, _, err := runtime.LoadTensors(out)
	require.NoError(t, err)
	require.Equal(t, ref["conv1.weight"].Shape, saved["conv1.weight"].Shape)
	require.Equal(t, ref["conv1.weight"].F32, saved["conv1.weight"].F32)
	require.Equal(t, ref["after.bn2.running_var"].F32, saved["bn2.running_var"].F32)
}
