//go:build linux && !android && (amd64 || arm64 || ppc64le)

package cuda

import "github.com/ebitengine/purego"

// dlopen, dlsym and ccall reach C libraries through purego, without cgo,
// on the platforms that have NVIDIA's driver for Linux; elsewhere
// (dl_other.go) there is no driver to load and the package only builds.

func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func dlsym(handle uintptr, name string) (uintptr, error) { return purego.Dlsym(handle, name) }

// ccall calls the C function fn and returns its result register.
func ccall(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}
