//go:build !linux || android || !(amd64 || arm64 || ppc64le)

package cuda

import (
	"fmt"
	"runtime"
)

// On this platform there is no CUDA driver to load: Open fails with
// ErrNoDriver, so that programs that import the package build and run on
// the CPU.

func dlopen(path string) (uintptr, error) {
	return 0, fmt.Errorf("the CUDA runtime of cnnc runs on linux/amd64, linux/arm64 and linux/ppc64le, not %s/%s", runtime.GOOS, runtime.GOARCH)
}

func dlsym(handle uintptr, name string) (uintptr, error) {
	return 0, fmt.Errorf("no symbol %s: no C library is loaded on %s/%s", name, runtime.GOOS, runtime.GOARCH)
}

func ccall(fn uintptr, args ...uintptr) uintptr {
	panic("cuda: no C function can be called on " + runtime.GOOS + "/" + runtime.GOARCH)
}
