// emu.cc is a CUDA emulator for tests on machines without a GPU: a shared
// library that stands in for both libcuda.so.1 and libnvrtc.so (point
// CNNC_LIBCUDA and CNNC_NVRTC at it) and runs the kernels of the model.cu
// files compiled into it (with emu.h) on the CPU.
//
// Device memory is host memory. NVRTC "compiles" by returning a token
// image; cuModuleGetFunction finds kernels by name among those compiled
// in. cuLaunchKernel runs the grid's blocks one after the other; the
// threads of a block are fibers (ucontext) that switch at __syncthreads,
// so barriers and __shared__ memory (static storage, one block at a time)
// behave as on a GPU. Between barriers the threads run in alternating
// forward and reverse order, so code that reads shared memory before the
// barrier that should guard it gives wrong results instead of lucky ones.
// Launch limits are checked as a GPU checks them.
#include <ucontext.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "emu.h"

namespace cnnc_emu {
cnnc_uint3 thread_idx, block_idx, block_dim, grid_dim;

static std::map<std::string, std::function<void(void**)>>& registry() {
  static std::map<std::string, std::function<void(void**)>> r;
  return r;
}

void register_kernel(const char* name, std::function<void(void**)> fn) { registry()[name] = fn; }

struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;
  bool done = false;
  cnnc_uint3 tid;
};

static const size_t kStack = 256 * 1024;
static ucontext_t sched;
static std::vector<Fiber> fibers;
static int current = -1;
static std::function<void()> body;

void syncthreads() {
  if (current < 0) return;
  swapcontext(&fibers[current].ctx, &sched);
}

static void entry() {
  body();
  fibers[current].done = true;
}

// run_block runs body once per thread of a block of n threads.
static void run_block(int n) {
  if ((int)fibers.size() < n) fibers.resize(n);
  for (int i = 0; i < n; ++i) {
    Fiber& f = fibers[i];
    if (!f.stack) f.stack = static_cast<char*>(malloc(kStack));
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = &sched;
    makecontext(&f.ctx, entry, 0);
    f.done = false;
    f.tid = cnnc_uint3{(unsigned)(i % block_dim.x), (unsigned)(i / block_dim.x % block_dim.y),
                       (unsigned)(i / (block_dim.x * block_dim.y))};
  }
  for (int phase = 0;; ++phase) {
    int left = 0;
    for (int k = 0; k < n; ++k) {
      const int i = phase % 2 == 0 ? k : n - 1 - k;
      Fiber& f = fibers[i];
      if (f.done) continue;
      current = i;
      thread_idx = f.tid;
      swapcontext(&sched, &f.ctx);
      if (!f.done) ++left;
    }
    if (left == 0) break;
  }
  current = -1;
}
}  // namespace cnnc_emu

using namespace cnnc_emu;

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum {
  kSuccess = 0,
  kInvalidValue = 1,
  kNotFound = 500,
  kLaunchOutOfResources = 701,
};

static const char* error_string(int code) {
  switch (code) {
    case kSuccess: return "no error";
    case kInvalidValue: return "invalid argument";
    case kNotFound: return "named symbol not found";
    case kLaunchOutOfResources: return "too many resources requested for launch";
  }
  return "unknown error";
}

static const char* error_name(int code) {
  switch (code) {
    case kSuccess: return "CUDA_SUCCESS";
    case kInvalidValue: return "CUDA_ERROR_INVALID_VALUE";
    case kNotFound: return "CUDA_ERROR_NOT_FOUND";
    case kLaunchOutOfResources: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
  }
  return "CUDA_ERROR_UNKNOWN";
}

struct Function {
  std::string name;
  std::function<void(void**)>* fn;
};

extern "C" {

CUresult cuInit(unsigned) { return kSuccess; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return kSuccess; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return kSuccess; }
CUresult cuDeviceGet(int* d, int ordinal) { *d = ordinal; return ordinal == 0 ? kSuccess : kInvalidValue; }
CUresult cuDeviceGetName(char* name, int len, int) {
  snprintf(name, len, "cnnc CPU emulator");
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int* v, int attr, int) {
  switch (attr) {
    case 75: *v = 8; break;   // compute capability major
    case 76: *v = 0; break;   // minor
    case 16: *v = 1; break;   // multiprocessors
    default: *v = 0;
  }
  return kSuccess;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, int) { *bytes = size_t(1) << 32; return kSuccess; }
CUresult cuDevicePrimaryCtxRetain(void** ctx, int) { static int c; *ctx = &c; return kSuccess; }
CUresult cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
CUresult cuCtxSetCurrent(void*) { return kSuccess; }
CUresult cuCtxSynchronize() { return kSuccess; }
CUresult cuMemGetInfo_v2(size_t* free, size_t* total) { *free = *total = size_t(1) << 32; return kSuccess; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  void* m = calloc(1, bytes);
  if (!m) return 2;
  *p = (CUdeviceptr)m;
  return kSuccess;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free((void*)p); return kSuccess; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) { memcpy((void*)dst, src, bytes); return kSuccess; }
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) { memcpy(dst, (const void*)src, bytes); return kSuccess; }
CUresult cuMemsetD32_v2(CUdeviceptr p, unsigned v, size_t n) {
  unsigned* q = (unsigned*)p;
  for (size_t i = 0; i < n; ++i) q[i] = v;
  return kSuccess;
}
CUresult cuModuleLoadData(void** mod, const void* image) {
  if (!image || memcmp(image, "CNNC-EMU", 8) != 0) return kInvalidValue;
  static int m;
  *mod = &m;
  return kSuccess;
}
CUresult cuModuleUnload(void*) { return kSuccess; }
CUresult cuModuleGetFunction(void** f, void*, const char* name) {
  auto it = registry().find(name);
  if (it == registry().end()) return kNotFound;
  *f = new Function{name, &it->second};
  return kSuccess;
}
CUresult cuFuncGetAttribute(int* v, int, void*) { *v = 0; return kSuccess; }
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
  (void)shared; (void)stream; (void)extra;
  const unsigned long long threads = (unsigned long long)bx * by * bz;
  if (!f || gx < 1 || gy < 1 || gz < 1 || threads < 1 || gx > 2147483647u || gy > 65535 || gz > 65535) {
    return kInvalidValue;
  }
  if (threads > 1024 || bx > 1024 || by > 1024 || bz > 64) return kInvalidValue;
  Function* fn = static_cast<Function*>(f);
  block_dim = cnnc_uint3{bx, by, bz};
  grid_dim = cnnc_uint3{gx, gy, gz};
  body = [fn, params]() { (*fn->fn)(params); };
  for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
      for (unsigned x = 0; x < gx; ++x) {
        block_idx = cnnc_uint3{x, y, z};
        run_block((int)threads);
      }
  return kSuccess;
}
CUresult cuStreamCreate(void** s, unsigned) { static int st; *s = &st; return kSuccess; }
CUresult cuStreamDestroy_v2(void*) { return kSuccess; }
CUresult cuStreamSynchronize(void*) { return kSuccess; }
CUresult cuEventCreate(void** e, unsigned) { *e = new double(0); return kSuccess; }
CUresult cuEventRecord(void*, void*) { return kSuccess; }
CUresult cuEventSynchronize(void*) { return kSuccess; }
CUresult cuEventElapsedTime(float* ms, void*, void*) { *ms = 0; return kSuccess; }
CUresult cuEventDestroy_v2(void* e) { delete static_cast<double*>(e); return kSuccess; }
CUresult cuGetErrorString(int code, const char** s) { *s = error_string(code); return kSuccess; }
CUresult cuGetErrorName(int code, const char** s) { *s = error_name(code); return kSuccess; }

// NVRTC.
typedef int nvrtcResult;
struct Program {
  std::string src, log;
};
nvrtcResult nvrtcVersion(int* major, int* minor) { *major = 13; *minor = 0; return 0; }
const char* nvrtcGetErrorString(nvrtcResult r) { return r == 0 ? "NVRTC_SUCCESS" : "NVRTC_ERROR_INVALID_OPTION"; }
nvrtcResult nvrtcCreateProgram(void** prog, const char* src, const char*, int, const char* const*, const char* const*) {
  *prog = new Program{src, ""};
  return 0;
}
nvrtcResult nvrtcCompileProgram(void* prog, int n, const char* const* opts) {
  Program* p = static_cast<Program*>(prog);
  bool arch = false;
  for (int i = 0; i < n; ++i) {
    std::string o = opts[i];
    if (o.rfind("--gpu-architecture=sm_", 0) == 0 || o.rfind("--gpu-architecture=compute_", 0) == 0) {
      arch = true;
    } else if (o != "-default-device" && o != "--std=c++17" && o != "-DNDEBUG") {
      p->log = "unexpected option " + o;
      return 5;
    }
  }
  if (!arch) {
    p->log = "no --gpu-architecture option";
    return 5;
  }
  return 0;
}
nvrtcResult nvrtcGetProgramLogSize(void* prog, size_t* n) { *n = static_cast<Program*>(prog)->log.size() + 1; return 0; }
nvrtcResult nvrtcGetProgramLog(void* prog, char* log) {
  const std::string& l = static_cast<Program*>(prog)->log;
  memcpy(log, l.c_str(), l.size() + 1);
  return 0;
}
static const char kImage[] = "CNNC-EMU";
nvrtcResult nvrtcGetPTXSize(void*, size_t* n) { *n = sizeof kImage; return 0; }
nvrtcResult nvrtcGetPTX(void*, char* out) { memcpy(out, kImage, sizeof kImage); return 0; }
nvrtcResult nvrtcGetCUBINSize(void*, size_t* n) { *n = sizeof kImage; return 0; }
nvrtcResult nvrtcGetCUBIN(void*, char* out) { memcpy(out, kImage, sizeof kImage); return 0; }
nvrtcResult nvrtcGetNumSupportedArchs(int* n) { *n = 3; return 0; }
nvrtcResult nvrtcGetSupportedArchs(int* a) { a[0] = 75; a[1] = 80; a[2] = 90; return 0; }
nvrtcResult nvrtcDestroyProgram(void** prog) { delete static_cast<Program*>(*prog); *prog = nullptr; return 0; }

}  // extern "C"
