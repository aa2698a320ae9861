//go:build !amd64 || purego

package elem

func asmSupported() bool { return false }

// The generated kernels, which this build lacks; useAsm is false, so these
// nil tables are never used.
var (
	sgdPlain        [2]sgdKernel
	sgdMomentum     [2][2][2]sgdKernel
	tanhAsm         func(x, y []float32)
	tanhBackwardAsm func(y, dy, dx []float32)
)
