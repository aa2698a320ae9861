package gemm

//go:generate go run github.com/cnnc/cnnc/codegen/asm/cmd/gengemm
