// Package asm emits Go assembly, and the Go declarations that go with it, for
// the AVX2/FMA and AVX-512 kernels that cnnc's runtime calls: GEMM
// micro-kernels (packed A, A read where it is stored, B or A read from a
// convolution's sample), packing, col2im, pooling and vector helpers.
//
// It drives avo (github.com/mmcloughlin/avo) as a library: each generator
// adds functions to a build.Context, and Render runs avo's compile passes and
// prints the assembly and the stub file. The kernels use physical registers
// chosen here, so the register allocation is fixed and easy to read in the
// output.
//
// The GEMM kernels are written to runtime/gemm by the gengemm command
// (codegen/asm/cmd/gengemm), which that package runs through go generate:
//
//	go generate ./runtime/gemm
//
// The SGD update and tanh kernels are written to runtime/elem the same way
// by the genelem command (codegen/asm/cmd/genelem):
//
//	go generate ./runtime/elem
//
// GEMMFiles and ElemFiles render the same files in memory, so a test can
// check that the files in the tree are not stale.
package asm
