package trainer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/runtime"
)

// fakeGPU stands in for a generated CUDAModel, which needs a GPU: the
// linear model whose parameters, gradients and momentum live on the
// "device" (dev, opt), while the host holds copies that only downloads
// (Params, Buffers, State) and uploads (SyncToDevice) move, as on a GPU.
type fakeGPU struct {
	dev     *linear          // the device's memory
	host    []*runtime.Param // the host's copies
	opt     *runtime.SGD     // the device's optimiser, with momentum buffers whatever the momentum
	hostVel []*runtime.Param // the host's copies of the momentum buffers
	first   *sgdCall         // the first SGDStep's settings
	step    uint64

	sgd                []sgdCall
	downloads, uploads int
	closed             bool
	staging            []float32 // the device's input buffer
	staged             int       // training steps whose input was in it
}

type sgdCall struct {
	lr, momentum, wd float64
	nesterov         bool
}

func newFakeGPU(seed uint64) *fakeGPU {
	m := &fakeGPU{dev: newLinear(seed), staging: make([]float32, linBatch*linPixels)}
	for _, p := range m.dev.Params() {
		m.host = append(m.host, runtime.NewParam(p.Name, p.Shape, true))
	}
	// Momentum 1 only allocates the buffers; SGDStep sets the settings.
	m.opt = runtime.NewSGD(m.dev.Params(), 0, 1, false, 0)
	for _, v := range m.opt.State() {
		m.hostVel = append(m.hostVel, runtime.NewParam(v.Name, v.Shape, false))
	}
	return m
}

func (m *fakeGPU) Staging() []float32 { return m.staging }

func (m *fakeGPU) TrainStep(x []float32, labels []int32) float32 {
	m.step++
	if &x[0] == &m.staging[0] {
		m.staged++
	}
	return m.dev.TrainStep(x, labels)
}

func (m *fakeGPU) Predict(x []float32) []float32 { return m.dev.Predict(x) }

func (m *fakeGPU) SGDStep(lr, momentum float64, nesterov bool, wd float64) error {
	call := sgdCall{lr, momentum, wd, nesterov}
	m.sgd = append(m.sgd, call)
	if m.first == nil {
		m.first = &call
	}
	if m.first.momentum != momentum || m.first.nesterov != nesterov || m.first.wd != wd {
		return errors.New("fake: SGDStep's momentum, Nesterov or weight decay changed during the run")
	}
	m.opt.Momentum, m.opt.Nesterov, m.opt.WeightDecay = momentum, nesterov, wd
	m.opt.SetLR(lr)
	m.opt.Step()
	return nil
}

// Params copies the parameters and gradients to the host.
func (m *fakeGPU) Params() []*runtime.Param {
	m.downloads++
	for i, p := range m.dev.Params() {
		copy(m.host[i].Data, p.Data)
		copy(m.host[i].Grad, p.Grad)
	}
	return m.host
}

func (m *fakeGPU) Buffers() []*runtime.Param { return nil }
func (m *fakeGPU) State() []*runtime.Param   { return m.Params() }

func (m *fakeGPU) SyncToDevice() error {
	m.uploads++
	for i, p := range m.dev.Params() {
		copy(p.Data, m.host[i].Data)
	}
	return nil
}

func (m *fakeGPU) SGDState() ([]*runtime.Param, int, error) {
	m.downloads++
	for i, v := range m.opt.State() {
		copy(m.hostVel[i].Data, v.Data)
	}
	return m.hostVel, m.opt.Steps, nil
}

func (m *fakeGPU) SetSGDState(steps int) error {
	m.uploads++
	for i, v := range m.opt.State() {
		copy(v.Data, m.hostVel[i].Data)
	}
	m.opt.Steps = steps
	return nil
}

func (m *fakeGPU) Load(path string) error {
	if err := runtime.LoadInto(path, m.State()); err != nil {
		return err
	}
	return m.SyncToDevice()
}

func (m *fakeGPU) Save(path string) error  { return runtime.SaveTensors(path, m.State(), nil) }
func (m *fakeGPU) Info() runtime.ModelInfo { return m.dev.Info() }
func (m *fakeGPU) Step() uint64            { return m.step }
func (m *fakeGPU) SetStep(step uint64)     { m.step = step }
func (m *fakeGPU) Close() error            { m.closed = true; return nil }
func noGPU(uint64) (*fakeGPU, error)       { return nil, errors.New("fake: no CUDA driver") }
func linearModel(seed uint64) Model        { return newLinear(seed) }
func withGPU(f func(uint64) (*fakeGPU, error)) env {
	e := testEnv
	var o options
	WithCUDA(f)(&o)
	e.newCUDA = o.newCUDA
	return e
}

var _ DeviceModel = (*fakeGPU)(nil)

// gpus records the fake GPU models a run makes.
type gpus struct{ made []*fakeGPU }

func (g *gpus) new(seed uint64) (*fakeGPU, error) {
	m := newFakeGPU(seed)
	g.made = append(g.made, m)
	return m, nil
}

// runDevice runs the trainer on the linear model, with the fake GPU made by
// newGPU (nil: a trainer built without WithCUDA).
func runDevice(t *testing.T, newGPU func(uint64) (*fakeGPU, error), args ...string) (*result, string, error) {
	t.Helper()
	e := testEnv
	if newGPU != nil {
		e = withGPU(newGPU)
	}
	var out bytes.Buffer
	res, err := run(linearModel, append([]string{"-save", ""}, args...), &out, e)
	return res, out.String(), err
}

func TestDeviceFlag(t *testing.T) {
	for _, d := range []string{"cpu", "cuda", "auto"} {
		c, err := parseFlags([]string{"-device", d}, &bytes.Buffer{})
		require.NoError(t, err)
		require.Equal(t, d, c.device)
		require.Empty(t, c.run, "-device says where a run trains, not what it is: a resumed run chooses again")
	}
	c, err := parseFlags(nil, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "cpu", c.device, "the default")
	_, err = parseFlags([]string{"-device", "gpu"}, &bytes.Buffer{})
	require.ErrorContains(t, err, `-device "gpu": want cpu, cuda or auto`)

	var out bytes.Buffer
	require.NoError(t, Run(newLinear, []string{"-h"}, &out))
	require.Regexp(t, `\n  -device cpu\n`, out.String())
}

// TestDeviceMatchesCPU trains on the fake GPU, whose SGDStep is the CPU's
// optimiser, and checks that the run is the CPU's bit for bit: the
// learning rate of every step, momentum, Nesterov and weight decay reach
// SGDStep, the optimiser steps on the device and not on the host, and the
// weights cross between host and device only a few times.
func TestDeviceMatchesCPU(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"schedule, Nesterov, weight decay, init", []string{"-schedule", "cosine:1", "-warmup", "0.5", "-nesterov", "-wd", "1e-3", "-init", "xavier_uniform", "-augment", "flip"}},
		{"no momentum", []string{"-momentum", "0", "-lr", "0.02"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"-epochs", "2", "-limit", "1000", "-seed", "5"}, tc.args...)
			cpuCk, gpuCk := filepath.Join(dir, "cpu.safetensors"), filepath.Join(dir, "gpu.safetensors")
			cpu, _, err := runDevice(t, nil, append(args, "-save", cpuCk)...)
			require.NoError(t, err)
			var g gpus
			gpu, out, err := runDevice(t, g.new, append(args, "-device", "cuda", "-save", gpuCk)...)
			require.NoError(t, err)
			require.Contains(t, out, "on the GPU (-device cuda)")
			require.Equal(t, noTimes(cpu.epochs), noTimes(gpu.epochs))

			require.Len(t, g.made, 1)
			m := g.made[0]
			require.True(t, m.closed, "the trainer closes the GPU model")
			batches := 2 * ((1000 + defaultBatch - 1) / defaultBatch)
			require.Len(t, m.sgd, batches, "one SGDStep per batch")
			require.Equal(t, batches, m.staged, "batches written into the device's staging buffer")
			c, err := parseFlags(args, &bytes.Buffer{})
			require.NoError(t, err)
			for i, call := range m.sgd {
				epoch, batch := i/(batches/2), i%(batches/2)
				require.Equal(t, sgdCall{runtime.LRAtStep(c.schedule, epoch, batch, batches/2), c.momentum, c.wd, c.nesterov}, call, "SGDStep %d", i)
			}
			require.LessOrEqual(t, m.downloads, 7, "downloads: the count of parameters, -init, the state, a checkpoint (state and momentum) per epoch")
			require.LessOrEqual(t, m.uploads, 1, "uploads: after -init only")

			// The checkpoints hold the same tensors, the momentum too, and
			// the GPU's says where it was made.
			ct, cm, err := runtime.LoadTensors(cpuCk)
			require.NoError(t, err)
			gt, gm, err := runtime.LoadTensors(gpuCk)
			require.NoError(t, err)
			require.Equal(t, len(ct), len(gt))
			for name, x := range ct {
				require.Equal(t, x.F32, gt[name].F32, name)
			}
			require.Equal(t, "cuda", gm[deviceKey])
			require.NotContains(t, cm, deviceKey)
			require.Equal(t, cm[optStepsKey], gm[optStepsKey])
			require.Equal(t, fmt.Sprint(batches), gm[dropoutKey], "the GPU model's step counter")
		})
	}
}

func TestDeviceNoGPU(t *testing.T) {
	cpu, _, err := runDevice(t, nil, "-epochs", "1", "-limit", "300")
	require.NoError(t, err)

	_, out, err := runDevice(t, noGPU, "-epochs", "1", "-limit", "300", "-device", "cuda")
	require.EqualError(t, err, "no usable GPU: fake: no CUDA driver; use -device cpu")
	require.Empty(t, out)
	// runtime/cuda's errors give the same advice; it is given once.
	_, _, err = runDevice(t, func(uint64) (*fakeGPU, error) {
		return nil, errors.New("no CUDA driver: libcuda.so.1 not found; use -device cpu")
	}, "-device", "cuda")
	require.EqualError(t, err, "no usable GPU: no CUDA driver: libcuda.so.1 not found; use -device cpu")

	res, out, err := runDevice(t, noGPU, "-epochs", "1", "-limit", "300", "-device", "auto")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "note: -device auto: no usable GPU (fake: no CUDA driver); training on the CPU\n"), out)
	require.Contains(t, out, " threads\n")
	require.Equal(t, noTimes(cpu.epochs), noTimes(res.epochs))

	var g gpus
	res, out, err = runDevice(t, g.new, "-epochs", "1", "-limit", "300", "-device", "auto")
	require.NoError(t, err)
	require.NotContains(t, out, "note:")
	require.Contains(t, out, "on the GPU")
	require.Len(t, g.made, 1)
	require.Equal(t, noTimes(cpu.epochs), noTimes(res.epochs))

	// A trainer built without the CUDA code.
	_, _, err = runDevice(t, nil, "-epochs", "1", "-limit", "300", "-device", "cuda")
	require.ErrorContains(t, err, "-device cuda: this trainer was built without the model's CUDA code")
	_, out, err = runDevice(t, nil, "-epochs", "1", "-limit", "300", "-device", "auto")
	require.NoError(t, err)
	require.Contains(t, out, "note: -device auto: this trainer was built without the model's CUDA code")
}

// TestMainNoGPU runs Main in a child process: without a GPU, -device cuda
// prints one plain line and exits with status 1.
func TestMainNoGPU(t *testing.T) {
	if os.Getenv("CNNC_TRAINER_TEST_MAIN") == "1" {
		os.Args = []string{"train", "-device", "cuda", "-save", ""}
		Main(newLinear, WithCUDA(noGPU))
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainNoGPU$")
	cmd.Env = append(os.Environ(), "CNNC_TRAINER_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var xerr *exec.ExitError
	require.ErrorAs(t, err, &xerr, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Equal(t, 1, xerr.ExitCode())
	require.Equal(t, "train: no usable GPU: fake: no CUDA driver; use -device cpu\n", stderr.String())
	require.Empty(t, stdout.String())
}

func TestDeviceUnsupported(t *testing.T) {
	var g gpus
	for _, tc := range []struct {
		args []string
		why  string
	}{
		{[]string{"-l1", "1e-4"}, "-l1 is not supported on the GPU"},
		{[]string{"-elastic", "1e-4:0.5"}, "-elastic is not supported on the GPU"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"-epochs", "1", "-limit", "300"}, tc.args...)
			_, _, err := runDevice(t, g.new, append(args, "-device", "cuda")...)
			require.ErrorContains(t, err, "-device cuda: "+tc.why)
			require.ErrorContains(t, err, "; use -device cpu")
			cpu, _, err := runDevice(t, g.new, args...)
			require.NoError(t, err)
			res, out, err := runDevice(t, g.new, append(args, "-device", "auto")...)
			require.NoError(t, err)
			require.Contains(t, out, "note: -device auto: "+tc.why)
			require.Contains(t, out, "; training on the CPU\n")
			require.Equal(t, noTimes(cpu.epochs), noTimes(res.epochs))
		})
	}
	require.Empty(t, g.made, "no GPU model for a run the GPU cannot do")
}

// TestDeviceCheckpoints checks how checkpoints cross between the CPU and
// the GPU: weights both ways, and runs resumed on either side, with their
// momentum, end where the uninterrupted run ends.
func TestDeviceCheckpoints(t *testing.T) {
	dir := t.TempDir()
	var g gpus
	args := []string{"-limit", "600", "-seed", "2"}

	// A GPU run with momentum: -load takes its weights anywhere.
	ck := filepath.Join(dir, "gpu.safetensors")
	trained, _, err := runDevice(t, g.new, append(args, "-epochs", "1", "-device", "cuda", "-save", ck)...)
	require.NoError(t, err)
	for _, d := range []string{"cpu", "cuda"} {
		res, out, err := runDevice(t, g.new, append(args, "-eval-only", "-load", ck, "-device", d)...)
		require.NoError(t, err)
		require.Equal(t, trained.testAcc, res.testAcc, "-eval-only -device %s", d)
		require.Contains(t, out, "loaded checkpoint "+ck)
	}
	_, _, err = runDevice(t, g.new, append(args, "-load", ck, "-epochs", "1", "-device", "cuda", "-lr", "0.01")...)
	require.NoError(t, err)

	// A checkpoint of a GPU run made before the trainer saved the GPU's
	// momentum cannot resume with momentum.
	old := filepath.Join(dir, "old.safetensors")
	tensors, meta, err := runtime.LoadTensors(ck)
	require.NoError(t, err)
	var state []*runtime.Param
	for name, x := range tensors {
		if !strings.HasPrefix(name, optimPrefix) {
			state = append(state, &runtime.Param{Name: name, Shape: x.Shape, Data: x.F32})
		}
	}
	require.NoError(t, runtime.SaveTensors(old, state, meta))
	_, _, err = runDevice(t, g.new, "-resume", old, "-epochs", "2")
	require.ErrorContains(t, err, "the run trained with -device cuda by a trainer that kept the SGD momentum on the GPU and not in the checkpoint; -resume needs it with -momentum 0.9: start from the checkpoint's weights with -load instead")

	// With momentum and without, runs resume on either side and end where
	// the uninterrupted run ends.
	for _, extra := range [][]string{nil, {"-momentum", "0", "-lr", "0.02"}} {
		args := append(slices.Clone(args), extra...)
		whole, _, err := runDevice(t, g.new, append(args, "-epochs", "3")...)
		require.NoError(t, err)
		for _, tc := range []struct{ first, then string }{{"cuda", "cuda"}, {"cuda", "cpu"}, {"cpu", "cuda"}, {"cpu", "auto"}} {
			t.Run(fmt.Sprintf("%s then %s %v", tc.first, tc.then, extra), func(t *testing.T) {
				part := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.safetensors", tc.first, tc.then, len(extra)))
				_, _, err := runDevice(t, g.new, append(args, "-epochs", "1", "-device", tc.first, "-save", part)...)
				require.NoError(t, err)
				rest, out, err := runDevice(t, g.new, "-resume", part, "-epochs", "3", "-device", tc.then, "-save", part)
				require.NoError(t, err)
				require.Contains(t, out, "resumed "+part)
				require.Equal(t, noTimes(whole.epochs[1:]), noTimes(rest.epochs))
				_, meta, err := runtime.LoadTensors(part)
				require.NoError(t, err)
				require.Equal(t, "3", meta[epochKey])
				if tc.then != "cpu" {
					require.Equal(t, "cuda", meta[deviceKey])
					require.Equal(t, meta[stepKey], meta[dropoutKey], "the GPU model's step counter after resuming")
				}
			})
		}
	}
}
