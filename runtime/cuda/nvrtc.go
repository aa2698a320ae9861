package cuda

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"unsafe"
)

// nvrtc holds the entry points of libnvrtc.
type nvrtc struct {
	lib            *library
	major, minor   int
	create, comp   uintptr
	logSize, log   uintptr
	ptxSize, ptx   uintptr
	destroy, errSt uintptr
	cubinSize      uintptr // 0 before CUDA 11.1
	cubin          uintptr
	numArchs       uintptr // 0 before CUDA 11.2
	archs          uintptr
}

func newNVRTC(lib *library) (*nvrtc, error) {
	r := &nvrtc{lib: lib}
	var version uintptr
	err := lib.symbols(map[string]*uintptr{
		"nvrtcVersion":           &version,
		"nvrtcCreateProgram":     &r.create,
		"nvrtcCompileProgram":    &r.comp,
		"nvrtcGetProgramLogSize": &r.logSize,
		"nvrtcGetProgramLog":     &r.log,
		"nvrtcGetPTXSize":        &r.ptxSize,
		"nvrtcGetPTX":            &r.ptx,
		"nvrtcDestroyProgram":    &r.destroy,
		"nvrtcGetErrorString":    &r.errSt,
	})
	if err != nil {
		return nil, err
	}
	lib.optional("nvrtcGetCUBINSize", &r.cubinSize)
	lib.optional("nvrtcGetCUBIN", &r.cubin)
	lib.optional("nvrtcGetNumSupportedArchs", &r.numArchs)
	lib.optional("nvrtcGetSupportedArchs", &r.archs)
	if r.cubinSize == 0 || r.cubin == 0 {
		r.cubinSize, r.cubin = 0, 0
	}
	var major, minor int32
	if err := r.call("nvrtcVersion", version, uintptr(unsafe.Pointer(&major)), uintptr(unsafe.Pointer(&minor))); err != nil {
		return nil, err
	}
	r.major, r.minor = int(major), int(minor)
	return r, nil
}

// call calls the NVRTC function fn and turns a failure into an *Error. It
// is marked uintptrescapes, as driver.call is.
//
//go:uintptrescapes
func (r *nvrtc) call(what string, fn uintptr, args ...uintptr) error {
	res := ccall(fn, args...)
	code := int(int32(uint32(res)))
	if code == 0 {
		return nil
	}
	s := ccall(r.errSt, uintptr(code))
	return &Error{Call: what, Code: code, Msg: goString(s)}
}

// supportedArchs returns the SM versions NVRTC can compile for, such as
// 90 for sm_90, or nil if this NVRTC cannot say.
func (r *nvrtc) supportedArchs() []int {
	if r.numArchs == 0 || r.archs == 0 {
		return nil
	}
	var n int32
	if r.call("nvrtcGetNumSupportedArchs", r.numArchs, uintptr(unsafe.Pointer(&n))) != nil || n <= 0 || n > 1000 {
		return nil
	}
	a := make([]int32, n)
	if r.call("nvrtcGetSupportedArchs", r.archs, uintptr(unsafe.Pointer(&a[0]))) != nil {
		return nil
	}
	out := make([]int, n)
	for i, v := range a {
		out[i] = int(v)
	}
	slices.Sort(out)
	return out
}

// target picks what to compile for a device of SM version sm: a CUBIN for
// sm_XY when NVRTC knows the architecture and can emit CUBIN; otherwise
// PTX for the newest virtual architecture NVRTC knows that the device
// can run, which the driver compiles when it loads the module.
func (r *nvrtc) target(sm int) (arch string, cubin bool) {
	archs := r.supportedArchs()
	if archs == nil || slices.Contains(archs, sm) {
		if r.cubin != 0 {
			return fmt.Sprintf("sm_%d", sm), true
		}
		return fmt.Sprintf("compute_%d", sm), false
	}
	best := archs[0]
	for _, a := range archs {
		if a <= sm {
			best = a
		}
	}
	return fmt.Sprintf("compute_%d", best), false
}

// compile compiles src, called name in messages, with the given options and
// returns the CUBIN (cubin true) or NUL-terminated PTX.
func (r *nvrtc) compile(src, name string, opts []string, cubin bool) ([]byte, error) {
	var prog uintptr
	csrc, cname := cString(src), cString(name)
	if err := r.call("nvrtcCreateProgram("+name+")", r.create, uintptr(unsafe.Pointer(&prog)),
		uintptr(unsafe.Pointer(&csrc[0])), uintptr(unsafe.Pointer(&cname[0])), 0, 0, 0); err != nil {
		return nil, err
	}
	defer ccall(r.destroy, uintptr(unsafe.Pointer(&prog)))

	// The option array holds pointers to Go memory; pin it all for the call.
	var pin runtime.Pinner
	defer pin.Unpin()
	copts := make([]*byte, len(opts))
	for i, o := range opts {
		b := cString(o)
		pin.Pin(&b[0])
		copts[i] = &b[0]
	}
	var optv uintptr
	if len(copts) > 0 {
		pin.Pin(&copts[0])
		optv = uintptr(unsafe.Pointer(&copts[0]))
	}
	what := fmt.Sprintf("nvrtcCompileProgram(%s, %s)", name, strings.Join(opts, " "))
	if err := r.call(what, r.comp, prog, uintptr(len(opts)), optv); err != nil {
		if log := r.programLog(prog); log != "" {
			e := err.(*Error)
			e.Msg += "\n" + truncate(log, 8000)
		}
		return nil, err
	}
	sizeFn, getFn, kind := r.ptxSize, r.ptx, "PTX"
	if cubin {
		sizeFn, getFn, kind = r.cubinSize, r.cubin, "CUBIN"
	}
	var size uintptr
	if err := r.call("nvrtcGet"+kind+"Size("+name+")", sizeFn, prog, uintptr(unsafe.Pointer(&size))); err != nil {
		return nil, err
	}
	if size == 0 || size > 1<<30 {
		return nil, fmt.Errorf("nvrtcGet%sSize(%s): implausible size %d", kind, name, size)
	}
	image := make([]byte, size)
	if err := r.call("nvrtcGet"+kind+"("+name+")", getFn, prog, uintptr(unsafe.Pointer(&image[0]))); err != nil {
		return nil, err
	}
	return image, nil
}

// programLog returns NVRTC's log for prog, or "".
func (r *nvrtc) programLog(prog uintptr) string {
	var size uintptr
	if r.call("nvrtcGetProgramLogSize", r.logSize, prog, uintptr(unsafe.Pointer(&size))) != nil || size <= 1 || size > 1<<26 {
		return ""
	}
	b := make([]byte, size)
	if r.call("nvrtcGetProgramLog", r.log, prog, uintptr(unsafe.Pointer(&b[0]))) != nil {
		return ""
	}
	return strings.TrimRight(string(b[:size-1]), "\x00\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("\n... (%d more bytes)", len(s)-n)
}
