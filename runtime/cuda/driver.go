package cuda

import (
	"fmt"
	"unsafe"
)

// An Error is a CUDA driver or NVRTC call that failed. Its message names
// the call and gives the library's own error string and code name:
// "cuMemAlloc(1048576 bytes): out of memory (CUDA_ERROR_OUT_OF_MEMORY)".
type Error struct {
	Call string // the call and what it was asked, such as "cuMemAlloc(1048576 bytes)"
	Code int    // the CUresult or nvrtcResult
	Name string // the code's name, such as "CUDA_ERROR_OUT_OF_MEMORY"
	Msg  string // the library's description
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "" && e.Name != "":
		return fmt.Sprintf("%s: %s (%s)", e.Call, e.Msg, e.Name)
	case e.Msg != "":
		return fmt.Sprintf("%s: %s (error %d)", e.Call, e.Msg, e.Code)
	}
	return fmt.Sprintf("%s: CUDA error %d", e.Call, e.Code)
}

// CUresult codes the package looks at.
const (
	cudaSuccess = 0
)

// streamCaptureThreadLocal is CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: while a
// stream captures, calls that are unsafe during capture (a synchronous
// copy, say) fail on the capturing thread only.
const streamCaptureThreadLocal = 1

// hasGraphs reports whether the driver has every function of graph capture
// and replay.
func (d *driver) hasGraphs() bool {
	return d.cuStreamBeginCapture != 0 && d.cuStreamEndCapture != 0 && d.cuGraphInstantiateWithFlags != 0 &&
		d.cuGraphLaunch != 0 && d.cuGraphExecDestroy != 0 && d.cuGraphDestroy != 0
}

// Device attributes (CUdevice_attribute).
const (
	attrMaxThreadsPerBlock      = 1
	attrMaxSharedMemoryPerBlock = 8
	attrMultiprocessorCount     = 16
	attrComputeCapabilityMajor  = 75
	attrComputeCapabilityMinor  = 76
)

// driver holds the entry points of libcuda.
type driver struct {
	lib *library

	cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName uintptr
	cuDeviceGetAttribute, cuDeviceTotalMem                                     uintptr
	cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent       uintptr
	cuCtxSynchronize, cuMemGetInfo                                             uintptr
	cuMemAlloc, cuMemFree, cuMemcpyHtoD, cuMemcpyDtoH, cuMemsetD32             uintptr
	cuMemAllocHost, cuMemFreeHost                                              uintptr
	cuModuleLoadData, cuModuleUnload, cuModuleGetFunction, cuFuncGetAttribute  uintptr
	cuLaunchKernel, cuStreamCreate, cuStreamDestroy, cuStreamSynchronize       uintptr
	cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime       uintptr
	cuEventDestroy, cuGetErrorString, cuGetErrorName                           uintptr

	// CUDA graphs, for replaying a captured step (CUDA 11.4 and later).
	cuStreamBeginCapture, cuStreamEndCapture, cuGraphInstantiateWithFlags uintptr
	cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy                     uintptr
}

func newDriver(lib *library) (*driver, error) {
	d := &driver{lib: lib}
	// What every use needs; a driver without one of these is unusable.
	err := lib.symbols(map[string]*uintptr{
		"cuInit":                   &d.cuInit,
		"cuDeviceGetCount":         &d.cuDeviceGetCount,
		"cuDeviceGet":              &d.cuDeviceGet,
		"cuDeviceGetAttribute":     &d.cuDeviceGetAttribute,
		"cuDevicePrimaryCtxRetain": &d.cuDevicePrimaryCtxRetain,
		"cuCtxSetCurrent":          &d.cuCtxSetCurrent,
		"cuCtxSynchronize":         &d.cuCtxSynchronize,
		"cuMemAlloc_v2":            &d.cuMemAlloc,
		"cuMemFree_v2":             &d.cuMemFree,
		"cuMemcpyHtoD_v2":          &d.cuMemcpyHtoD,
		"cuMemcpyDtoH_v2":          &d.cuMemcpyDtoH,
		"cuMemsetD32_v2":           &d.cuMemsetD32,
		"cuModuleLoadData":         &d.cuModuleLoadData,
		"cuModuleGetFunction":      &d.cuModuleGetFunction,
		"cuLaunchKernel":           &d.cuLaunchKernel,
		"cuGetErrorString":         &d.cuGetErrorString,
		"cuGetErrorName":           &d.cuGetErrorName,
	})
	// The rest fail when called if the driver lacks them.
	for name, p := range map[string]*uintptr{
		"cuDriverGetVersion":           &d.cuDriverGetVersion,
		"cuDeviceGetName":              &d.cuDeviceGetName,
		"cuDeviceTotalMem_v2":          &d.cuDeviceTotalMem,
		"cuDevicePrimaryCtxRelease_v2": &d.cuDevicePrimaryCtxRelease,
		"cuMemGetInfo_v2":              &d.cuMemGetInfo,
		"cuMemAllocHost_v2":            &d.cuMemAllocHost,
		"cuMemFreeHost":                &d.cuMemFreeHost,
		"cuModuleUnload":               &d.cuModuleUnload,
		"cuFuncGetAttribute":           &d.cuFuncGetAttribute,
		"cuStreamCreate":               &d.cuStreamCreate,
		"cuStreamDestroy_v2":           &d.cuStreamDestroy,
		"cuStreamSynchronize":          &d.cuStreamSynchronize,
		"cuEventCreate":                &d.cuEventCreate,
		"cuEventRecord":                &d.cuEventRecord,
		"cuEventSynchronize":           &d.cuEventSynchronize,
		"cuEventElapsedTime":           &d.cuEventElapsedTime,
		"cuEventDestroy_v2":            &d.cuEventDestroy,
		"cuStreamBeginCapture_v2":      &d.cuStreamBeginCapture,
		"cuStreamEndCapture":           &d.cuStreamEndCapture,
		"cuGraphInstantiateWithFlags":  &d.cuGraphInstantiateWithFlags,
		"cuGraphLaunch":                &d.cuGraphLaunch,
		"cuGraphExecDestroy":           &d.cuGraphExecDestroy,
		"cuGraphDestroy":               &d.cuGraphDestroy,
	} {
		lib.optional(name, p)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// call calls the driver function fn and turns a failure into an *Error
// whose Call is what.
//
// Like purego.SyscallN, it is marked uintptrescapes: an argument written
// uintptr(unsafe.Pointer(p)) in a call of it, or in a call of a function
// that passes its unsafe.Pointer on that way, moves *p to the heap, where
// it stays put during the C call. Without it a Go variable on the stack,
// such as the loss Model.Train reads back, could move when the stack
// grows between the conversion and the call, and the C function would
// write to where it was.
//
//go:uintptrescapes
func (d *driver) call(what string, fn uintptr, args ...uintptr) error {
	if fn == 0 {
		return fmt.Errorf("%s: this CUDA driver (%s) lacks the function", what, d.lib.path)
	}
	if code := raw(fn, args...); code != cudaSuccess {
		return d.errorFor(what, code)
	}
	return nil
}

// raw calls the C function fn and returns its int result. It is marked
// uintptrescapes, as call is.
//
//go:uintptrescapes
func raw(fn uintptr, args ...uintptr) int {
	return int(int32(uint32(ccall(fn, args...))))
}

// errorFor describes a failed call with the driver's own strings.
func (d *driver) errorFor(what string, code int) *Error {
	e := &Error{Call: what, Code: code}
	var p uintptr
	if r := ccall(d.cuGetErrorString, uintptr(code), uintptr(unsafe.Pointer(&p))); int32(uint32(r)) == 0 {
		e.Msg = goString(p)
	}
	p = 0
	if r := ccall(d.cuGetErrorName, uintptr(code), uintptr(unsafe.Pointer(&p))); int32(uint32(r)) == 0 {
		e.Name = goString(p)
	}
	return e
}
