//go:build !purego

package gemm

import (
	"os"

	"golang.org/x/sys/cpu"
)

// asmSupported reports whether the CPU runs the generated kernels and the
// user has not asked for the Go ones with CNNC_PUREGO=1.
func asmSupported() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && os.Getenv("CNNC_PUREGO") != "1"
}

// asmKernels[acc][rows] is the generated micro-kernel for rows rows.
var asmKernels = [2][mr + 1]func(kc int, a, b, c *float32, ldc int){
	{nil, sgemm1x16, sgemm2x16, sgemm3x16, sgemm4x16, sgemm5x16, sgemm6x16},
	{nil, sgemm1x16Acc, sgemm2x16Acc, sgemm3x16Acc, sgemm4x16Acc, sgemm5x16Acc, sgemm6x16Acc},
}

func kernelAsm(rows, kc int, a, b, c []float32, ldc int, acc bool) {
	// The slice expressions check the bounds the assembly relies on.
	a = a[:kc*mr]
	b = b[:kc*nr]
	c = c[:(rows-1)*ldc+nr]
	i := 0
	if acc {
		i = 1
	}
	asmKernels[i][rows](kc, &a[0], &b[0], &c[0], ldc)
}

// asmEpiKernels[rows] is the generated micro-kernel with the epilogue for
// rows rows.
var asmEpiKernels = [mr + 1]func(kc int, a, b, c *float32, ldc int, rowBias, colBias *float32, flags int){
	nil, sgemm1x16Epi, sgemm2x16Epi, sgemm3x16Epi, sgemm4x16Epi, sgemm5x16Epi, sgemm6x16Epi,
}

func kernelEpiAsm(rows, kc int, a, b, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	a = a[:kc*mr]
	b = b[:kc*nr]
	c = c[:(rows-1)*ldc+nr]
	var rowBias, colBias *float32
	if ep.RowBias != nil {
		rowBias = &ep.RowBias[i:][:rows][0]
	}
	if ep.ColBias != nil {
		colBias = &ep.ColBias[j:][:nr][0]
	}
	flags := 0
	if acc {
		flags |= epiAccumulate
	}
	if ep.ReLU {
		flags |= epiReLU
	}
	asmEpiKernels[rows](kc, &a[0], &b[0], &c[0], ldc, rowBias, colBias, flags)
}

// The flags of the epilogue kernels (codegen/asm.EpiAccumulate, EpiReLU).
const (
	epiAccumulate = 1
	epiReLU       = 2
)
