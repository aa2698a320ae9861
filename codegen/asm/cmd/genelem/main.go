// Command genelem writes runtime/elem's generated assembly and Go stubs
// (kernels_amd64.s, kernels_amd64.go) into a directory, by default the
// current one. runtime/elem runs it through go generate:
//
//	go generate ./runtime/elem
//
// It renders every file before writing any, and writes only files whose
// contents changed.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cnnc/cnnc/codegen/asm"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the files into")
	flag.Parse()
	files, err := asm.ElemFiles()
	if err == nil {
		err = asm.WriteFiles(*dir, files)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "genelem: %v\n", err)
		os.Exit(1)
	}
}
