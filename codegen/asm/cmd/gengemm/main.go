// Command gengemm writes runtime/gemm's generated assembly and Go stubs
// (kernels_amd64.s, kernels_amd64.go) into a directory, by default the
// current one. runtime/gemm runs it through go generate:
//
//	go generate ./runtime/gemm
//
// It renders every file before writing any, and writes only files whose
// contents changed.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/cnnc/cnnc/codegen/asm"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the files into")
	opt := asm.DefaultGEMMOptions
	flag.IntVar(&opt.Unroll, "unroll", opt.Unroll, "k steps per trip of the micro-kernel loop (tuning; the checked-in files use the default)")
	flag.IntVar(&opt.PrefetchA, "prefetcha", opt.PrefetchA, "prefetch distance for packed A in bytes, 0 for none (tuning)")
	flag.IntVar(&opt.PrefetchB, "prefetchb", opt.PrefetchB, "prefetch distance for packed B in bytes, 0 for none (tuning)")
	flag.IntVar(&opt.PrefetchBRows, "prefetchbrows", opt.PrefetchBRows, "k steps ahead to prefetch B rows read in place, 0 for none (tuning)")
	flag.IntVar(&opt.PrefetchCLate, "prefetchclate", opt.PrefetchCLate, "k steps before the end to prefetch C again, 0 for never (tuning)")
	dev := flag.String("dev", "", "comma-separated MRxNR tiles to add as dev<MR>x<NR> kernels (tuning)")
	flag.Parse()
	for _, t := range strings.Split(*dev, ",") {
		var sh [2]int
		if _, err := fmt.Sscanf(t, "%dx%d", &sh[0], &sh[1]); err == nil {
			opt.DevShapes = append(opt.DevShapes, sh)
		}
	}
	if err := run(*dir, opt); err != nil {
		fmt.Fprintf(os.Stderr, "gengemm: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, opt asm.GEMMOptions) error {
	files, err := asm.GEMMFilesWith(opt)
	if err != nil {
		return err
	}
	return asm.WriteFiles(dir, files)
}
