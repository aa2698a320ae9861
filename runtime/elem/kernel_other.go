//go:build !amd64 || purego

package elem

func asmSupported() bool { return false }

// The generated kernels, which this build lacks; useAsm is false, so these
// nil tables are never used.
var (
	sgdPlain         [2]sgdKernel
	sgdMomentum      [2][2][2]sgdKernel
	tanhAsm          func(x, y []float32)
	tanhBackwardAsm  func(y, dy, dx []float32)
	bnReLUSumsAsm    func(dy, out, z []float32, mean float32) (sdy, sdyz float32)
	bnReLUDzAsm      func(dz, dy, out, z []float32, mean, istd, a, b, c float32)
	sumAsm           func(x []float32) float32
	sumReLUAsm       func(x, mask []float32) float32
	reluBackwardAsm  func(dx, y, dy []float32)
	colSumF64Asm     func(acc []float64, x []float32, rows, ld int)
	colSumReLUF64Asm func(acc []float64, x, mask []float32, rows, ld int)
	sumSqF64Asm      func(x []float32) (s1, s2 float64)
)
