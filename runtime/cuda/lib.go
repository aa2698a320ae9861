package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// ErrNoDriver is wrapped by the error Open returns when the CUDA driver
// library cannot be loaded; ErrNoDevice when it loads but reports no usable
// GPU. [NoGPU] reports either.
var (
	ErrNoDriver = errors.New("no CUDA driver")
	ErrNoDevice = errors.New("no CUDA device")
	ErrNoNVRTC  = errors.New("no NVRTC")
)

// NoGPU reports whether err says that this machine has no usable GPU: no
// driver, or a driver that sees no device.
func NoGPU(err error) bool {
	return errors.Is(err, ErrNoDriver) || errors.Is(err, ErrNoDevice)
}

// A library is a shared object opened with dlopen, with the symbols the
// package resolved in it.
type library struct {
	path   string
	handle uintptr
}

// sym returns the address of name, or an error that names the library.
func (l *library) sym(name string) (uintptr, error) {
	p, err := dlsym(l.handle, name)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%s has no symbol %s", l.path, name)
	}
	return p, nil
}

// symbols resolves every name in fns into its pointer, stopping at the first
// missing one.
func (l *library) symbols(fns map[string]*uintptr) error {
	names := make([]string, 0, len(fns))
	for name := range fns {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p, err := l.sym(name)
		if err != nil {
			return err
		}
		*fns[name] = p
	}
	return nil
}

// optional resolves name if the library has it, and leaves *p at 0
// otherwise.
func (l *library) optional(name string, p *uintptr) {
	if q, err := dlsym(l.handle, name); err == nil {
		*p = q
	}
}

// open tries the candidates in order and returns the first that loads,
// with the reasons the others failed.
func open(candidates []string, before func(path string)) (*library, []string) {
	var why []string
	for _, path := range candidates {
		if before != nil {
			before(path)
		}
		h, err := dlopen(path)
		if err == nil {
			return &library{path: path, handle: h}, nil
		}
		why = append(why, fmt.Sprintf("%s: %v", path, err))
	}
	return nil, why
}

// libcudaCandidates lists where to look for the driver library.
func libcudaCandidates() []string {
	if p := os.Getenv("CNNC_LIBCUDA"); p != "" {
		return []string{p}
	}
	return []string{
		"libcuda.so.1",
		"/usr/lib/x86_64-linux-gnu/libcuda.so.1",
		"/usr/lib64/libcuda.so.1",
		"/usr/local/nvidia/lib64/libcuda.so.1",
		"/usr/lib/wsl/lib/libcuda.so.1",
	}
}

// nvrtcCandidates lists where to look for NVRTC: by name first, then in
// CUDA installations and in the nvidia wheels of Python environments,
// newest version first within each folder.
func nvrtcCandidates() []string {
	if p := os.Getenv("CNNC_NVRTC"); p != "" {
		return []string{p}
	}
	c := []string{"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"}
	dirs := []string{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"}
	for _, pat := range []string{"/usr/local/cuda-*/lib64", "/usr/local/cuda-*/targets/x86_64-linux/lib"} {
		m, _ := filepath.Glob(pat)
		slices.Sort(m)
		slices.Reverse(m)
		dirs = append(dirs, m...)
	}
	var roots []string
	for _, pat := range []string{
		"/usr/lib/python3*/site-packages", "/usr/lib/python3*/dist-packages",
		"/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
		"/opt/*/lib/python3*/site-packages", "/opt/*/.venv/lib/python3*/site-packages",
		"/opt/conda/lib/python3*/site-packages",
	} {
		m, _ := filepath.Glob(pat)
		roots = append(roots, m...)
	}
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if v := os.Getenv(env); v != "" {
			m, _ := filepath.Glob(filepath.Join(v, "lib/python3*/site-packages"))
			roots = append(roots, m...)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		m, _ := filepath.Glob(filepath.Join(home, ".local/lib/python3*/site-packages"))
		roots = append(roots, m...)
	}
	for _, r := range roots {
		for _, sub := range []string{"nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib", "nvidia/cu12/lib"} {
			dirs = append(dirs, filepath.Join(r, sub))
		}
	}
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "libnvrtc.so*"))
		slices.Sort(m)
		slices.Reverse(m)
		c = append(c, m...)
	}
	return c
}

// preloadBuiltins opens the libnvrtc-builtins beside an NVRTC found by path,
// so that NVRTC finds it loaded when it asks for it by name, even where
// the folder is not on the linker's search path.
func preloadBuiltins(path string) {
	if !strings.Contains(path, "/") {
		return
	}
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "libnvrtc-builtins.so*"))
	for _, b := range m {
		dlopen(b) // best effort
	}
}

var (
	loadMu    sync.Mutex
	loadedDrv = map[string]*driver{}
	loadedRTC = map[string]*nvrtc{}
)

// loadDriver loads and resolves the driver library, once per candidate
// list. A failure is not remembered, so that a test may point
// CNNC_LIBCUDA elsewhere and try again.
func loadDriver() (*driver, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	cands := libcudaCandidates()
	key := strings.Join(cands, "\x00")
	if d := loadedDrv[key]; d != nil {
		return d, nil
	}
	lib, why := open(cands, nil)
	if lib == nil {
		if os.Getenv("CNNC_LIBCUDA") != "" {
			return nil, fmt.Errorf("%w: CNNC_LIBCUDA=%s cannot be loaded (%s); use -device cpu", ErrNoDriver, cands[0], strings.Join(why, "; "))
		}
		return nil, fmt.Errorf("%w: libcuda.so.1 not found; use -device cpu", ErrNoDriver)
	}
	d, err := newDriver(lib)
	if err != nil {
		return nil, fmt.Errorf("%w: %v; use -device cpu", ErrNoDriver, err)
	}
	loadedDrv[key] = d
	return d, nil
}

// loadNVRTC loads and resolves NVRTC, as loadDriver does the driver.
func loadNVRTC() (*nvrtc, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	cands := nvrtcCandidates()
	key := strings.Join(cands, "\x00")
	if r := loadedRTC[key]; r != nil {
		return r, nil
	}
	lib, why := open(cands, preloadBuiltins)
	if lib == nil {
		if len(why) > 3 {
			why = append(why[:3], fmt.Sprintf("and %d more", len(why)-3))
		}
		return nil, fmt.Errorf("%w: libnvrtc not found (tried %s); install the CUDA toolkit's NVRTC or set CNNC_NVRTC to the library's path", ErrNoNVRTC, strings.Join(why, "; "))
	}
	r, err := newNVRTC(lib)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNVRTC, err)
	}
	loadedRTC[key] = r
	return r, nil
}

// goString copies the NUL-terminated C string at p.
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	base := cPointer(p)
	var b []byte
	for i := 0; ; i++ {
		c := *(*byte)(unsafe.Add(base, i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// cPointer turns an address in C memory, returned by a C function, into a
// pointer. The memory is C's, so the garbage collector never moves it.
func cPointer(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// cString returns s as a NUL-terminated byte slice.
func cString(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}
