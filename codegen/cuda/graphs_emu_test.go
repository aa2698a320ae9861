//go:build linux && (amd64 || arm64)

package cuda_test

import (
	"math"
	"slices"
	"testing"

	"github.com/ebitengine/purego"
	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/codegen/cuda"
	"github.com/cnnc/cnnc/codegen/cuda/cudacheck"
	cnnc "github.com/cnnc/cnnc/runtime"
	cudart "github.com/cnnc/cnnc/runtime/cuda"
)

// TestEmulatorGraphs trains LeNet-5 with batch-norm and dropout on the
// emulator with CUDA graphs on, off (CNNC_CUDA_GRAPHS=0) and refused by the
// driver (the emulator's CNNC_EMU_NO_GRAPHS=1), over full and partial
// batches with SGD steps in between, and checks that the three give the
// same losses, logits, parameters, buffers and momentum bit for bit, and
// that with graphs on every full batch, and only those, replayed a graph.
func TestEmulatorGraphs(t *testing.T) {
	var c cudacheck.Case
	for _, m := range emulatedModels() {
		if m.Name == "lenet5bn" {
			c = m
		}
	}
	prog, err := cudacheck.Compile(c, c.Batch)
	require.NoError(t, err)
	lib := emulator(t, []*cuda.Program{prog})
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	require.NoError(t, err)
	sym, err := purego.Dlsym(h, "cnnc_emu_graph_launches")
	require.NoError(t, err)
	graphLaunches := func() int {
		r, _, _ := purego.SyscallN(sym)
		return int(r)
	}
	dev, err := cudart.Open()
	require.NoError(t, err)

	// Batches of 6 (full) and 4 (partial): the first full batch captures.
	sizes := []int{6, 4, 6, 6, 4, 6}
	full := 0
	for _, n := range sizes {
		if n == c.Batch {
			full++
		}
	}
	type run struct {
		bits   []uint32 // of every loss, logit, tensor and momentum buffer, in order
		graphs bool
		replay int // graphs launched
	}
	train := func(t *testing.T) run {
		m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 5)
		require.NoError(t, err)
		defer func() { require.NoError(t, m.Close()) }()
		before := graphLaunches()
		var r run
		add := func(v ...float32) {
			for _, x := range v {
				r.bits = append(r.bits, math.Float32bits(x))
			}
		}
		rng := cnnc.NewRNG(9)
		sample := 1
		for _, d := range prog.Plan.InputShape {
			sample *= d
		}
		for _, n := range sizes {
			x := make([]float32, n*sample)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			y := make([]int32, n)
			for i := range y {
				y[i] = int32(rng.Intn(prog.Plan.Classes))
			}
			loss, err := m.Train(x, y)
			require.NoError(t, err)
			add(loss)
			require.NoError(t, m.SGDStep(0.05, 0.9, false, 1e-3))
			logits, err := m.Infer(x)
			require.NoError(t, err)
			add(logits...)
		}
		state, err := m.State()
		require.NoError(t, err)
		velocity, steps, err := m.SGDState()
		require.NoError(t, err)
		require.Equal(t, len(sizes), steps)
		for _, p := range append(state, velocity...) {
			add(p.Data...)
		}
		r.graphs = m.Graphs()
		r.replay = graphLaunches() - before
		return r
	}

	t.Setenv("CNNC_CUDA_GRAPHS", "0")
	off := train(t)
	require.False(t, off.graphs)
	require.Zero(t, off.replay)
	for _, tc := range []struct {
		name, graphs, noGraphs string
		want                   bool
		replay                 int
	}{
		{"on", "1", "0", true, 2 * full}, // training and inference
		{"refused by the driver", "1", "1", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CNNC_CUDA_GRAPHS", tc.graphs)
			t.Setenv("CNNC_EMU_NO_GRAPHS", tc.noGraphs)
			r := train(t)
			require.Equal(t, tc.want, r.graphs, "Model.Graphs")
			require.Equal(t, tc.replay, r.replay, "graphs launched")
			require.Equal(t, len(off.bits), len(r.bits))
			for i := range off.bits {
				if off.bits[i] != r.bits[i] {
					t.Fatalf("value %d of the run: %v with graphs off, %v with graphs %s", i,
						math.Float32frombits(off.bits[i]), math.Float32frombits(r.bits[i]), tc.name)
				}
			}
		})
	}
}

// TestEmulatorStagingAndProfile checks that a batch written into the
// model's staging buffer trains as the same batch passed from Go memory
// does, and that Profile times every launch of the plan, in order, without
// changing the parameters.
func TestEmulatorStagingAndProfile(t *testing.T) {
	var c cudacheck.Case
	for _, m := range emulatedModels() {
		if m.Name == "lenet5" {
			c = m
		}
	}
	prog, err := cudacheck.Compile(c, c.Batch)
	require.NoError(t, err)
	emulator(t, []*cuda.Program{prog})
	dev, err := cudart.Open()
	require.NoError(t, err)
	m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 5)
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()

	sample := 1
	for _, d := range prog.Plan.InputShape {
		sample *= d
	}
	n := c.Batch - 1
	rng := cnnc.NewRNG(4)
	x := make([]float32, n*sample)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(rng.Intn(prog.Plan.Classes))
	}
	want, err := m.Train(x, y)
	require.NoError(t, err)
	staging := m.Staging()
	require.Len(t, staging, c.Batch*sample)
	copy(staging, x)
	got, err := m.Train(staging[:len(x)], y)
	require.NoError(t, err)
	require.Equal(t, want, got, "loss of the batch in the staging buffer")
	copy(staging[sample:], x)
	got, err = m.Train(staging[sample:sample+len(x)], y)
	require.NoError(t, err)
	require.Equal(t, want, got, "loss of the batch one sample into the staging buffer")

	before, err := m.Params()
	require.NoError(t, err)
	snapshot := func(ps []*cnnc.Param) (out []float32) {
		for _, p := range ps {
			out = append(out, p.Data...)
		}
		return out
	}
	wantParams := snapshot(before)
	for _, train := range []bool{true, false} {
		times, err := m.Profile(train, n, 2)
		require.NoError(t, err)
		seq := prog.Plan.Infer
		if train {
			seq = prog.Plan.Train
		}
		require.Len(t, times, len(seq))
		for i, l := range seq {
			require.Equal(t, l.Kernel, times[i].Kernel)
			require.Equal(t, l.Block[0], times[i].Block.X)
		}
	}
	after, err := m.Params()
	require.NoError(t, err)
	require.Equal(t, wantParams, snapshot(after), "parameters after Profile")
	_, err = m.Profile(true, c.Batch+1, 1)
	require.Error(t, err, "Profile for more samples than the batch")
}

// TestEmulatorPrepare checks that the launches an inference pass needs of
// the state alone (LeNet-5-BN's batch-norm folded into the convolutions)
// run again whenever the state changed: after a training step (running
// statistics), an SGD step (weights) and SyncToDevice (the host's values).
func TestEmulatorPrepare(t *testing.T) {
	var c cudacheck.Case
	for _, m := range emulatedModels() {
		if m.Name == "lenet5bn" {
			c = m
		}
	}
	prog, err := cudacheck.Compile(c, c.Batch)
	require.NoError(t, err)
	require.NotEmpty(t, prog.Plan.Prepare)
	emulator(t, []*cuda.Program{prog})
	dev, err := cudart.Open()
	require.NoError(t, err)
	sample := 1
	for _, d := range prog.Plan.InputShape {
		sample *= d
	}
	rng := cnnc.NewRNG(8)
	x := make([]float32, c.Batch*sample)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int32, c.Batch)
	for i := range y {
		y[i] = int32(rng.Intn(prog.Plan.Classes))
	}
	model := func() *cudart.Model {
		m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 5)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		return m
	}
	infer := func(m *cudart.Model) []float32 {
		logits, err := m.Infer(x)
		require.NoError(t, err)
		return slices.Clone(logits)
	}
	// a infers before every change; b only after them, from a fresh
	// preparation.
	a, b := model(), model()
	infer(a)
	_, err = a.Train(x, y)
	require.NoError(t, err)
	_, err = b.Train(x, y)
	require.NoError(t, err)
	require.Equal(t, infer(b), infer(a), "after a training step")
	require.NoError(t, a.SGDStep(0.1, 0.9, false, 0))
	require.NoError(t, b.SGDStep(0.1, 0.9, false, 0))
	require.Equal(t, infer(b), infer(a), "after an SGD step")

	before := infer(a)
	params, err := a.Params()
	require.NoError(t, err)
	params[0].Data[0] += 1 // conv1.weight, which batch-norm's folding scales
	require.NoError(t, a.SyncToDevice())
	require.NotEqual(t, before, infer(a), "after SyncToDevice changed conv1.weight")
}

// TestEmulatorCapability checks that a model whose kernels need a newer
// GPU than the one at hand (the emulator says 8.0) is refused with an
// error that says what to do.
func TestEmulatorCapability(t *testing.T) {
	c := emulatedModels()[0].WithTF32()
	prog, err := cudacheck.Compile(c, c.Batch)
	require.NoError(t, err)
	require.Equal(t, 80, prog.Plan.Capability)
	emulator(t, []*cuda.Program{prog})
	dev, err := cudart.Open()
	require.NoError(t, err)
	m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 1)
	require.NoError(t, err, "TF32 on a GPU of compute capability 8.0")
	require.NoError(t, m.Close())
	plan := *prog.Plan
	plan.Capability = 90
	_, err = cudart.NewModel(dev, prog.Source, &plan, 1)
	require.ErrorContains(t, err, "needs a GPU of compute capability 9.0 or later")
	require.ErrorContains(t, err, "without -cuda-tf32")
}
