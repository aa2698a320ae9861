package cuda

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	cnnc "github.com/cnnc/cnnc/runtime"
)

// TestOpenWithoutGPU checks the error a machine without CUDA gets.
func TestOpenWithoutGPU(t *testing.T) {
	if _, err := os.Stat("/dev/nvidia0"); err == nil {
		t.Skip("this machine has an NVIDIA device")
	}
	t.Setenv("CNNC_LIBCUDA", "")
	if lib, _ := open(libcudaCandidates(), nil); lib != nil {
		t.Skipf("a CUDA driver is installed at %s", lib.path)
	}
	_, err := Open()
	require.Error(t, err)
	require.True(t, NoGPU(err), "NoGPU(%v)", err)
	require.True(t, errors.Is(err, ErrNoDriver))
	require.EqualError(t, err, "no CUDA driver: libcuda.so.1 not found; use -device cpu")
}

func TestOpenBadLibrary(t *testing.T) {
	t.Setenv("CNNC_LIBCUDA", "/nonexistent/libcuda.so.1")
	_, err := Open()
	require.True(t, NoGPU(err), "NoGPU(%v)", err)
	require.ErrorContains(t, err, "no CUDA driver: CNNC_LIBCUDA=/nonexistent/libcuda.so.1 cannot be loaded")
	require.ErrorContains(t, err, "use -device cpu")
}

func TestNVRTCCandidates(t *testing.T) {
	t.Setenv("CNNC_NVRTC", "")
	c := nvrtcCandidates()
	require.Equal(t, []string{"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"}, c[:4])
	for _, p := range c[4:] {
		require.True(t, strings.Contains(p, "libnvrtc.so"), p)
		require.False(t, strings.Contains(p, "builtins"), p)
	}
	t.Setenv("CNNC_NVRTC", "/opt/x/libnvrtc.so.13")
	require.Equal(t, []string{"/opt/x/libnvrtc.so.13"}, nvrtcCandidates())
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{Call: "cuMemAlloc(1024 bytes)", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Msg: "out of memory"},
			"cuMemAlloc(1024 bytes): out of memory (CUDA_ERROR_OUT_OF_MEMORY)"},
		{Error{Call: "nvrtcCompileProgram(model.cu)", Code: 6, Msg: "NVRTC_ERROR_COMPILATION"},
			"nvrtcCompileProgram(model.cu): NVRTC_ERROR_COMPILATION (error 6)"},
		{Error{Call: "cuInit(0)", Code: 999}, "cuInit(0): CUDA error 999"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.err.Error())
	}
}

func TestDimEval(t *testing.T) {
	tests := []struct {
		d    Dim
		n    int
		want int
	}{
		{Dim{Fixed: 1}, 5, 1},
		{Dim{}, 5, 1},
		{Dim{PerSample: 784, Div: 64}, 64, 784},
		{Dim{PerSample: 784, Div: 64}, 1, 13},
		{Dim{Fixed: 100, Div: 256}, 7, 1},
		{Dim{Fixed: 3, PerSample: 2, Div: 4}, 3, 3},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.d.Eval(tt.n), "%+v at n=%d", tt.d, tt.n)
	}
}

func validPlan() *Plan {
	return &Plan{
		Name: "tiny", Batch: 2, InputShape: []int{3}, Classes: 2, Words: 1024,
		State: []Tensor{
			{Name: "fc.weight", Shape: []int{2, 3}, Offset: 0, Trainable: true, Init: cnnc.Init{Scheme: "zeros"}},
		},
		ParamWords: 64, GradBase: 64, VelocityBase: 128,
		Input: 192, Labels: 256, Step: 288, Loss: 320, Logits: 384,
		Train: []Launch{{Kernel: "k", Block: [3]int{256, 1, 1}, Args: []Arg{Ptr(0), N, Seed(3), Ptr(288), Int(5)}}},
	}
}

func TestPlanValidate(t *testing.T) {
	require.NoError(t, validPlan().Validate())
	tests := []struct {
		name   string
		change func(p *Plan)
		want   string
	}{
		{"arena too small", func(p *Plan) { p.Words = 386 }, "logits [384, 388) lies outside the arena of 386 words"},
		{"block too large", func(p *Plan) { p.Train[0].Block = [3]int{2048, 1, 1} }, `launch of "k" has block [2048 1 1]`},
		{"pointer outside", func(p *Plan) { p.Train[0].Args[0] = Ptr(5000) }, "passes offset 5000 outside the arena"},
		{"bad init", func(p *Plan) { p.State[0].Init.Scheme = "fancy" }, `fc.weight: unknown init scheme "fancy"`},
		{"param outside region", func(p *Plan) { p.State[0].Offset = 100 }, "parameter fc.weight lies outside the parameter region"},
		{"no batch", func(p *Plan) { p.Batch = 0 }, "batch 0, classes 2 and arena size 1024 must be positive"},
		{"step outside", func(p *Plan) { p.Step = 1023 }, "step [1023, 1025) lies outside the arena of 1024 words"},
		{"step misaligned", func(p *Plan) { p.Step = 289 }, "the step word at 289 is not 8-byte aligned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPlan()
			tt.change(p)
			require.ErrorContains(t, p.Validate(), tt.want)
		})
	}
}
