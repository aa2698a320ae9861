//go:build !purego

package elem

import (
	"os"

	"golang.org/x/sys/cpu"
)

// asmSupported reports whether the CPU runs the generated kernels and the
// user has not asked for the Go ones with CNNC_PUREGO=1.
func asmSupported() bool {
	return cpu.X86.HasAVX2 && os.Getenv("CNNC_PUREGO") != "1"
}

// sgdPlain[wd] are the SGD kernels without momentum, and
// sgdMomentum[first][nesterov][wd] those with momentum (see
// asm.SGDKernelName).
var (
	sgdPlain    = [2]sgdKernel{sgd, sgdWD}
	sgdMomentum = [2][2][2]sgdKernel{
		{{sgdMom, sgdMomWD}, {sgdMomNesterov, sgdMomNesterovWD}},
		{{sgdMomFirst, sgdMomFirstWD}, {sgdMomFirstNesterov, sgdMomFirstNesterovWD}},
	}
	tanhAsm          = tanh
	tanhBackwardAsm  = tanhBackward
	bnReLUSumsAsm    = bnReLUSums
	bnReLUDzAsm      = bnReLUDz
	sumAsm           = sum
	sumReLUAsm       = sumReLU
	reluBackwardAsm  = reluBackward
	colSumF64Asm     = colSumF64
	colSumReLUF64Asm = colSumReLUF64
	sumSqF64Asm      = sumSqF64
)
