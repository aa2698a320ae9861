package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"
)

// A DevicePtr is an address in device memory (a CUdeviceptr).
type DevicePtr uint64

// A Device is one GPU with its primary context made current for this
// package's calls.
type Device struct {
	drv      *driver
	ordinal  int
	dev      int32
	ctx      uintptr
	name     string
	major    int
	minor    int
	sms      int
	memBytes int64
	driverV  int
}

// Open initialises the CUDA driver and returns device 0. Without a usable
// GPU it returns an error for which [NoGPU] is true, such as "no CUDA
// driver: libcuda.so.1 not found; use -device cpu".
func Open() (*Device, error) { return OpenDevice(0) }

// OpenDevice is Open for the device with the given ordinal.
func OpenDevice(ordinal int) (*Device, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := drv.call("cuInit(0)", drv.cuInit, 0); err != nil {
		// CUDA_ERROR_NO_DEVICE, a driver that does not match the kernel
		// module, or no permission on /dev/nvidia*: no usable GPU.
		return nil, fmt.Errorf("%w: %v; use -device cpu", ErrNoDevice, err)
	}
	var count int32
	if err := drv.call("cuDeviceGetCount", drv.cuDeviceGetCount, uintptr(unsafe.Pointer(&count))); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(count) {
		return nil, fmt.Errorf("%w: device %d asked for, the driver sees %d; use -device cpu", ErrNoDevice, ordinal, count)
	}
	d := &Device{drv: drv, ordinal: ordinal}
	if err := drv.call(fmt.Sprintf("cuDeviceGet(%d)", ordinal), drv.cuDeviceGet, uintptr(unsafe.Pointer(&d.dev)), uintptr(ordinal)); err != nil {
		return nil, err
	}
	// The version, name and memory size are for messages only.
	var v int32
	if drv.call("cuDriverGetVersion", drv.cuDriverGetVersion, uintptr(unsafe.Pointer(&v))) == nil {
		d.driverV = int(v)
	}
	name := make([]byte, 256)
	d.name = fmt.Sprintf("CUDA device %d", ordinal)
	if drv.call("cuDeviceGetName", drv.cuDeviceGetName, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(d.dev)) == nil {
		d.name = strings.TrimRight(string(name[:clen(name)]), " ")
	}
	for _, a := range []struct {
		attr int
		dst  *int
	}{
		{attrComputeCapabilityMajor, &d.major},
		{attrComputeCapabilityMinor, &d.minor},
		{attrMultiprocessorCount, &d.sms},
	} {
		var x int32
		if err := drv.call(fmt.Sprintf("cuDeviceGetAttribute(%d)", a.attr), drv.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&x)), uintptr(a.attr), uintptr(d.dev)); err != nil {
			return nil, err
		}
		*a.dst = int(x)
	}
	var mem uint64
	if drv.call("cuDeviceTotalMem", drv.cuDeviceTotalMem, uintptr(unsafe.Pointer(&mem)), uintptr(d.dev)) == nil {
		d.memBytes = int64(mem)
	}
	if err := drv.call("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&d.ctx)), uintptr(d.dev)); err != nil {
		return nil, err
	}
	if err := drv.call("cuCtxSetCurrent", drv.cuCtxSetCurrent, d.ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// Name returns the device's name, such as "NVIDIA H100 80GB HBM3".
func (d *Device) Name() string { return d.name }

// ComputeCapability returns the device's SM version, such as 9, 0.
func (d *Device) ComputeCapability() (major, minor int) { return d.major, d.minor }

// Multiprocessors returns the number of streaming multiprocessors.
func (d *Device) Multiprocessors() int { return d.sms }

// MemoryBytes returns the device's total memory.
func (d *Device) MemoryBytes() int64 { return d.memBytes }

// DriverVersion returns the driver's CUDA version as 1000*major +
// 10*minor, such as 13000.
func (d *Device) DriverVersion() int { return d.driverV }

// String describes the device: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs,
// 79 GiB, driver CUDA 13.0)".
func (d *Device) String() string {
	return fmt.Sprintf("%s (sm_%d%d, %d SMs, %.0f GiB, driver CUDA %d.%d)", d.name, d.major, d.minor, d.sms,
		float64(d.memBytes)/(1<<30), d.driverV/1000, d.driverV%1000/10)
}

// bind locks the calling goroutine to its thread and makes the device's
// context current there; the returned function undoes the lock.
func (d *Device) bind() (func(), error) {
	runtime.LockOSThread()
	if err := d.drv.call("cuCtxSetCurrent", d.drv.cuCtxSetCurrent, d.ctx); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return runtime.UnlockOSThread, nil
}

// Close releases the device's primary context. Memory and modules of the
// device must not be used afterwards.
func (d *Device) Close() error {
	if d.ctx == 0 || d.drv.cuDevicePrimaryCtxRelease == 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d.ctx = 0
	return d.drv.call("cuDevicePrimaryCtxRelease", d.drv.cuDevicePrimaryCtxRelease, uintptr(d.dev))
}

// Synchronize waits for all work queued on the device.
func (d *Device) Synchronize() error {
	unbind, err := d.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return d.drv.call("cuCtxSynchronize", d.drv.cuCtxSynchronize)
}

// FreeMemory returns the free and total device memory in bytes.
func (d *Device) FreeMemory() (free, total int64, err error) {
	unbind, err := d.bind()
	if err != nil {
		return 0, 0, err
	}
	defer unbind()
	var f, t uint64
	err = d.drv.call("cuMemGetInfo", d.drv.cuMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t)))
	return int64(f), int64(t), err
}

// Alloc allocates bytes of device memory.
func (d *Device) Alloc(bytes int64) (DevicePtr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("cuMemAlloc(%d bytes): the size must be positive", bytes)
	}
	unbind, err := d.bind()
	if err != nil {
		return 0, err
	}
	defer unbind()
	var p DevicePtr
	err = d.drv.call(fmt.Sprintf("cuMemAlloc(%d bytes)", bytes), d.drv.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(bytes))
	return p, err
}

// Free frees memory from Alloc.
func (d *Device) Free(p DevicePtr) error {
	unbind, err := d.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return d.drv.call("cuMemFree", d.drv.cuMemFree, uintptr(p))
}

// allocHost allocates n floats of page-locked host memory, which the
// device reads at the bus's full rate, on a bound thread. It returns nil
// if the driver cannot.
func (d *Device) allocHost(n int) []float32 {
	if d.drv.cuMemAllocHost == 0 || d.drv.cuMemFreeHost == 0 || n == 0 {
		return nil
	}
	var p unsafe.Pointer
	if raw(d.drv.cuMemAllocHost, uintptr(unsafe.Pointer(&p)), uintptr(4*n)) != cudaSuccess || p == nil {
		return nil
	}
	return unsafe.Slice((*float32)(p), n)
}

// freeHost frees what allocHost returned, on a bound thread.
func (d *Device) freeHost(s []float32) error {
	return d.drv.call("cuMemFreeHost", d.drv.cuMemFreeHost, uintptr(unsafe.Pointer(&s[0])))
}

// CopyToDevice copies src to device memory at dst.
func CopyToDevice[T float32 | int32](d *Device, dst DevicePtr, src []T) error {
	if len(src) == 0 {
		return nil
	}
	unbind, err := d.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return d.copyIn(dst, unsafe.Pointer(&src[0]), len(src)*4)
}

// CopyFromDevice copies len(dst) elements from device memory at src.
func CopyFromDevice[T float32 | int32](d *Device, dst []T, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	unbind, err := d.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return d.copyOut(unsafe.Pointer(&dst[0]), src, len(dst)*4)
}

// copyIn and copyOut run on a bound thread. The host memory is Go's; the
// calls are synchronous, so it need not stay put beyond them.
func (d *Device) copyIn(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	return d.drv.call(fmt.Sprintf("cuMemcpyHtoD(%d bytes)", bytes), d.drv.cuMemcpyHtoD, uintptr(dst), uintptr(src), uintptr(bytes))
}

func (d *Device) copyOut(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	return d.drv.call(fmt.Sprintf("cuMemcpyDtoH(%d bytes)", bytes), d.drv.cuMemcpyDtoH, uintptr(dst), uintptr(src), uintptr(bytes))
}

// Memset32 sets count 32-bit words at p to v.
func (d *Device) Memset32(p DevicePtr, v uint32, count int) error {
	unbind, err := d.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return d.drv.call(fmt.Sprintf("cuMemsetD32(%d words)", count), d.drv.cuMemsetD32, uintptr(p), uintptr(v), uintptr(count))
}

// A Module is compiled device code loaded on a device.
type Module struct {
	dev    *Device
	handle uintptr
	Arch   string // what NVRTC compiled for, such as "sm_90"
	Cached bool   // whether the image came from the disk cache
}

// A Function is a kernel of a module.
type Function struct {
	dev    *Device
	handle uintptr
	Name   string
}

// CompileOptions are the NVRTC options every compilation uses besides the
// architecture.
var CompileOptions = []string{"-default-device", "--std=c++17", "-DNDEBUG"}

// Compile compiles CUDA C source with NVRTC for this device (name is the
// file name in messages, such as "model.cu") and loads it. The compiled
// image is cached on disk under os.UserCacheDir()/cnnc/cuda, keyed by the
// SHA-256 of the source, architecture, options and NVRTC version; a
// cache that cannot be read or written is skipped.
func (d *Device) Compile(src, name string) (*Module, error) {
	rtc, err := loadNVRTC()
	if err != nil {
		return nil, err
	}
	arch, cubin := rtc.target(10*d.major + d.minor)
	opts := append([]string{"--gpu-architecture=" + arch}, CompileOptions...)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00nvrtc %d.%d\x00", strings.Join(opts, "\x00"), arch, rtc.major, rtc.minor)
	h.Write([]byte(src))
	key := hex.EncodeToString(h.Sum(nil))
	ext := ".ptx"
	if cubin {
		ext = ".cubin"
	}
	path := ""
	if dir, err := os.UserCacheDir(); err == nil {
		path = filepath.Join(dir, "cnnc", "cuda", key+ext)
	}
	if path != "" {
		if image, err := os.ReadFile(path); err == nil && len(image) > 0 {
			if m, err := d.LoadModule(image); err == nil {
				m.Arch, m.Cached = arch, true
				return m, nil
			}
		}
	}
	image, err := rtc.compile(src, name, opts, cubin)
	if err != nil {
		return nil, err
	}
	m, err := d.LoadModule(image)
	if err != nil {
		return nil, err
	}
	m.Arch = arch
	if path != "" {
		writeCache(path, image)
	}
	return m, nil
}

// writeCache writes image to path through a temporary file, ignoring
// failures: the cache only saves time.
func writeCache(path string, image []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(image)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
	}
}

// LoadModule loads a CUBIN or NUL-terminated PTX image.
func (d *Device) LoadModule(image []byte) (*Module, error) {
	if len(image) == 0 {
		return nil, fmt.Errorf("cuModuleLoadData: empty image")
	}
	unbind, err := d.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	m := &Module{dev: d}
	if err := d.drv.call(fmt.Sprintf("cuModuleLoadData(%d bytes)", len(image)), d.drv.cuModuleLoadData, uintptr(unsafe.Pointer(&m.handle)), uintptr(unsafe.Pointer(&image[0]))); err != nil {
		return nil, err
	}
	return m, nil
}

// Unload unloads the module.
func (m *Module) Unload() error {
	if m.handle == 0 || m.dev.drv.cuModuleUnload == 0 {
		return nil
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	h := m.handle
	m.handle = 0
	return m.dev.drv.call("cuModuleUnload", m.dev.drv.cuModuleUnload, h)
}

// Function returns the kernel called name (an extern "C" __global__
// function).
func (m *Module) Function(name string) (*Function, error) {
	unbind, err := m.dev.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	f := &Function{dev: m.dev, Name: name}
	cname := cString(name)
	if err := m.dev.drv.call(fmt.Sprintf("cuModuleGetFunction(%s)", name), m.dev.drv.cuModuleGetFunction, uintptr(unsafe.Pointer(&f.handle)), m.handle, uintptr(unsafe.Pointer(&cname[0]))); err != nil {
		return nil, err
	}
	return f, nil
}

// Function attributes (CUfunction_attribute).
const (
	FuncMaxThreadsPerBlock = 0
	FuncSharedBytes        = 1
	FuncLocalBytes         = 3
	FuncNumRegs            = 4
)

// Attribute returns one of the Func* attributes of the kernel.
func (f *Function) Attribute(attr int) (int, error) {
	unbind, err := f.dev.bind()
	if err != nil {
		return 0, err
	}
	defer unbind()
	var v int32
	err = f.dev.drv.call(fmt.Sprintf("cuFuncGetAttribute(%s, %d)", f.Name, attr), f.dev.drv.cuFuncGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(attr), f.handle)
	return int(v), err
}

// A Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z int }

// Launch queues the kernel on the default stream with the given grid and
// block and dynamic shared memory. Each argument is a DevicePtr, int32,
// uint32, uint64 or float32, as the kernel's parameters are.
func (f *Function) Launch(grid, block Dim3, shared int, args ...any) error {
	unbind, err := f.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	vals := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case DevicePtr:
			vals[i] = uint64(v)
		case int32:
			vals[i] = uint64(uint32(v))
		case uint32:
			vals[i] = uint64(v)
		case uint64:
			vals[i] = v
		case float32:
			vals[i] = uint64(math.Float32bits(v))
		default:
			return fmt.Errorf("cuLaunchKernel(%s): argument %d has type %T; want DevicePtr, int32, uint32, uint64 or float32", f.Name, i, a)
		}
	}
	return f.launch(grid, block, shared, 0, vals)
}

// launch runs on a bound thread and queues the kernel on stream (0 for
// the default stream). Each argument is stored in 8 bytes of vals,
// little-endian, so a 4-byte parameter reads the low half.
func (f *Function) launch(grid, block Dim3, shared int, stream uintptr, vals []uint64) error {
	if grid.X < 1 || grid.Y < 1 || grid.Z < 1 || block.X < 1 || block.Y < 1 || block.Z < 1 {
		return fmt.Errorf("cuLaunchKernel(%s): grid %v and block %v must be positive", f.Name, grid, block)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	var params uintptr
	if len(vals) > 0 {
		ptrs := make([]unsafe.Pointer, len(vals))
		pin.Pin(&vals[0])
		for i := range vals {
			ptrs[i] = unsafe.Pointer(&vals[i])
		}
		pin.Pin(&ptrs[0])
		params = uintptr(unsafe.Pointer(&ptrs[0]))
	}
	drv := f.dev.drv
	return drv.call(f.launchDesc(grid, block), drv.cuLaunchKernel, f.handle,
		uintptr(grid.X), uintptr(grid.Y), uintptr(grid.Z),
		uintptr(block.X), uintptr(block.Y), uintptr(block.Z),
		uintptr(shared), stream, params, 0)
}

func (f *Function) launchDesc(grid, block Dim3) string {
	return fmt.Sprintf("cuLaunchKernel(%s, grid %dx%dx%d, block %dx%dx%d)", f.Name, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z)
}

// An Event marks a point in the default stream, for timing.
type Event struct {
	dev    *Device
	handle uintptr
}

// NewEvent creates an event.
func (d *Device) NewEvent() (*Event, error) {
	unbind, err := d.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	e := &Event{dev: d}
	if err := d.drv.call("cuEventCreate", d.drv.cuEventCreate, uintptr(unsafe.Pointer(&e.handle)), 0); err != nil {
		return nil, err
	}
	return e, nil
}

// Record records the event on the default stream.
func (e *Event) Record() error {
	unbind, err := e.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return e.dev.drv.call("cuEventRecord", e.dev.drv.cuEventRecord, e.handle, 0)
}

// Elapsed waits for end and returns the milliseconds between e and end.
func (e *Event) Elapsed(end *Event) (float32, error) {
	unbind, err := e.dev.bind()
	if err != nil {
		return 0, err
	}
	defer unbind()
	drv := e.dev.drv
	if err := drv.call("cuEventSynchronize", drv.cuEventSynchronize, end.handle); err != nil {
		return 0, err
	}
	var ms float32
	err = drv.call("cuEventElapsedTime", drv.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), e.handle, end.handle)
	return ms, err
}

// Destroy frees the event.
func (e *Event) Destroy() error {
	unbind, err := e.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return e.dev.drv.call("cuEventDestroy", e.dev.drv.cuEventDestroy, e.handle)
}

// A Stream is a queue of device work. A Model launches on a stream of its
// own; the copies and Function.Launch use the default stream, with which
// streams made by NewStream synchronise.
type Stream struct {
	dev    *Device
	handle uintptr
}

// NewStream creates a stream.
func (d *Device) NewStream() (*Stream, error) {
	unbind, err := d.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	s := &Stream{dev: d}
	if err := d.drv.call("cuStreamCreate", d.drv.cuStreamCreate, uintptr(unsafe.Pointer(&s.handle)), 0); err != nil {
		return nil, err
	}
	return s, nil
}

// Synchronize waits for the stream's work.
func (s *Stream) Synchronize() error {
	unbind, err := s.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return s.dev.drv.call("cuStreamSynchronize", s.dev.drv.cuStreamSynchronize, s.handle)
}

// Destroy destroys the stream.
func (s *Stream) Destroy() error {
	unbind, err := s.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	return s.dev.drv.call("cuStreamDestroy", s.dev.drv.cuStreamDestroy, s.handle)
}
