package elem

//go:generate go run github.com/cnnc/cnnc/codegen/asm/cmd/genelem
