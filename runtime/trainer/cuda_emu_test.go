package trainer

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/gen/lenet5"
	"github.com/cnnc/cnnc/runtime"
)

// cudaEmulator skips the test unless the CUDA emulator of codegen/cuda's
// tests can run and was asked for; otherwise it compiles the generated
// LeNet-5's kernels (model.cu) for the host into it, points runtime/cuda
// at it, which then takes it for the driver and NVRTC, and returns an env
// whose GPU model is LeNet-5's CUDAModel.
func cudaEmulator(t *testing.T) env {
	t.Helper()
	if goruntime.GOOS != "linux" || (goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64") {
		t.Skip("the emulator and runtime/cuda's loader need linux/amd64 or linux/arm64")
	}
	clangxx, err := exec.LookPath("clang++")
	if err != nil {
		t.Skip("clang++ not found: install clang (apt-get install -y clang) to run the generated kernels on the CPU emulator")
	}
	if testing.Short() {
		t.Skip("compiles and emulates LeNet-5's kernels; skipped in -short mode")
	}
	if os.Getenv("CNNC_CUDA_EMULATOR") != "1" {
		t.Skip("set CNNC_CUDA_EMULATOR=1 to run the generated kernels on the CPU emulator")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "model.cu")
	require.NoError(t, os.WriteFile(src, []byte(lenet5.CUDASource()), 0o644))
	emu, err := filepath.Abs(filepath.Join("..", "..", "codegen", "cuda", "testdata", "emu"))
	require.NoError(t, err)
	lib := filepath.Join(dir, "libcnnc_emu.so")
	// -Bsymbolic binds the library to its own kernel registry: a second
	// emulator loaded into the process (another test's) would otherwise
	// register its kernels with the first's.
	cmd := exec.Command(clangxx, "-std=c++17", "-O1", "-fPIC", "-shared", "-Wl,-Bsymbolic", "-Wno-unused-function", "-Wno-unused-variable",
		"-I", emu, "-o", lib, filepath.Join(emu, "emu.cc"), "-x", "c++", "-include", "emu.h", src)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "compiling the kernels for the emulator:\n%s", out)
	t.Setenv("CNNC_LIBCUDA", lib)
	t.Setenv("CNNC_NVRTC", lib)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	e := testEnv
	var o options
	WithCUDA(lenet5.NewCUDASeeded)(&o)
	e.newCUDA = o.newCUDA
	return e
}

// TestCUDAEmulator trains the generated LeNet-5 with -device cuda on the
// CUDA emulator and checks that the run, its SGD steps on the device and
// its checkpoint agree with the CPU's.
func TestCUDAEmulator(t *testing.T) {
	e := cudaEmulator(t)
	dir := t.TempDir()
	newCPU := func(seed uint64) Model { return lenet5.NewSeeded(seed) }
	args := []string{"-epochs", "1", "-limit", "32", "-batch", "16", "-seed", "3", "-wd", "1e-3", "-nesterov", "-schedule", "cosine:1"}
	cpuCk, gpuCk := filepath.Join(dir, "cpu.safetensors"), filepath.Join(dir, "gpu.safetensors")
	var cpuOut, gpuOut bytes.Buffer
	cpu, err := run(newCPU, append(args, "-save", cpuCk), &cpuOut, e)
	require.NoError(t, err)
	gpu, err := run(newCPU, append(args, "-device", "cuda", "-save", gpuCk), &gpuOut, e)
	require.NoError(t, err, gpuOut.String())
	require.Contains(t, gpuOut.String(), "on the GPU (-device cuda)")
	require.InEpsilon(t, cpu.epochs[0].Loss, gpu.epochs[0].Loss, 1e-4, "loss on the CPU and the GPU")

	ct, _, err := runtime.LoadTensors(cpuCk)
	require.NoError(t, err)
	gt, meta, err := runtime.LoadTensors(gpuCk)
	require.NoError(t, err)
	require.Equal(t, "cuda", meta[deviceKey])
	require.Equal(t, "2", meta[optStepsKey], "two SGD steps on the device")
	for _, name := range []string{"conv1.weight", "conv2.bias", "fc3.weight"} {
		a, b := ct[name].F32, gt[name].F32
		require.Len(t, b, len(a), name)
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-5 {
				t.Fatalf("%s[%d]: %v on the CPU, %v on the GPU", name, i, a[i], b[i])
			}
		}
	}
}

// TestCUDAEmulatorResume interrupts a -device cuda run with momentum after
// an epoch and resumes it on the emulator, and checks that it ends bit for
// bit where the uninterrupted run ends: the checkpoint carries the GPU's
// momentum buffers and SGD step count.
func TestCUDAEmulatorResume(t *testing.T) {
	e := cudaEmulator(t)
	dir := t.TempDir()
	newCPU := func(seed uint64) Model { return lenet5.NewSeeded(seed) }
	straight, part := filepath.Join(dir, "straight.safetensors"), filepath.Join(dir, "part.safetensors")
	args := []string{"-limit", "40", "-batch", "16", "-seed", "4", "-nesterov", "-wd", "1e-3", "-schedule", "cosine:2", "-device", "cuda", "-metrics", "", "-metrics-csv", ""}
	var out bytes.Buffer
	whole, err := run(newCPU, append([]string{"-epochs", "2", "-save", straight}, args...), &out, e)
	require.NoError(t, err, out.String())
	_, err = run(newCPU, append([]string{"-epochs", "1", "-save", part}, args...), &out, e)
	require.NoError(t, err, out.String())
	rest, err := run(newCPU, []string{"-resume", part, "-epochs", "2", "-device", "cuda"}, &out, e)
	require.NoError(t, err, out.String())
	require.Equal(t, noTimes(whole.epochs[1:]), noTimes(rest.epochs))
	requireSameTensors(t, straight, part)
	tensors, meta, err := runtime.LoadTensors(part)
	require.NoError(t, err)
	require.Contains(t, tensors, optimPrefix+"conv1.weight.momentum_buffer")
	require.Equal(t, "6", meta[optStepsKey], "2 epochs of 3 batches")
}
