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
//
// Streams and graphs: launches run when they are made, except on a stream
// that captures (cuStreamBeginCapture_v2 to cuStreamEndCapture), where they
// are recorded with copies of their parameters' values, as CUDA records
// them, and run only when cuGraphLaunch replays the instantiated graph.
// Misuse of a capture fails as CUDA's global and thread-local capture modes
// make it fail, and invalidates the capture: a synchronous copy, memset,
// allocation or cuCtxSynchronize (on the capturing thread, or any thread in
// global mode), a launch on the legacy default stream (which would wait for
// the capturing stream), or synchronising the capturing stream. The
// environment variable CNNC_EMU_NO_GRAPHS=1 makes every capture fail, as a
// driver without graphs would. cnnc_emu_graph_launches counts the graphs
// replayed, for tests.
#include <pthread.h>
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

struct Kernel {
  std::function<void(void**)> fn;
  std::vector<size_t> sizes;  // of the parameters
};

static std::map<std::string, Kernel>& registry() {
  static std::map<std::string, Kernel> r;
  return r;
}

void register_kernel(const char* name, std::function<void(void**)> fn, std::vector<size_t> sizes) {
  registry()[name] = Kernel{fn, sizes};
}

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
  kIllegalState = 401,
  kNotFound = 500,
  kLaunchOutOfResources = 701,
  kNotSupported = 801,
  kCaptureUnsupported = 900,
  kCaptureInvalidated = 901,
  kCaptureImplicit = 906,
  kCaptureWrongThread = 908,
};

static const char* error_string(int code) {
  switch (code) {
    case kSuccess: return "no error";
    case kInvalidValue: return "invalid argument";
    case kNotFound: return "named symbol not found";
    case kLaunchOutOfResources: return "too many resources requested for launch";
    case kIllegalState: return "the operation cannot be performed in the present state";
    case kNotSupported: return "operation not supported";
    case kCaptureUnsupported: return "operation not permitted when stream is capturing";
    case kCaptureInvalidated: return "operation failed due to a previous error during capture";
    case kCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case kCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}

static const char* error_name(int code) {
  switch (code) {
    case kSuccess: return "CUDA_SUCCESS";
    case kInvalidValue: return "CUDA_ERROR_INVALID_VALUE";
    case kNotFound: return "CUDA_ERROR_NOT_FOUND";
    case kLaunchOutOfResources: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case kIllegalState: return "CUDA_ERROR_ILLEGAL_STATE";
    case kNotSupported: return "CUDA_ERROR_NOT_SUPPORTED";
    case kCaptureUnsupported: return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
    case kCaptureInvalidated: return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED";
    case kCaptureImplicit: return "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT";
    case kCaptureWrongThread: return "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD";
  }
  return "CUDA_ERROR_UNKNOWN";
}

struct Function {
  std::string name;
  Kernel* k;
};

// A Launch is a kernel launch that a capture recorded, with its
// parameters' values.
struct Launch {
  Function* fn;
  unsigned grid[3], block[3];
  std::vector<char> args;       // the values, one after the other
  std::vector<size_t> offsets;  // of each value in args
};

// A Graph is a captured sequence of launches; an instantiated graph is a
// copy of one.
struct Graph {
  std::vector<Launch> launches;
};

enum { kCaptureGlobal = 0, kCaptureThreadLocal = 1, kCaptureRelaxed = 2 };

struct Stream {
  Graph* capture = nullptr;  // the graph being captured, if any
  bool invalidated = false;  // a misuse spoilt the capture
  int mode = kCaptureGlobal;
  pthread_t thread;  // that began the capture
};

// capturing is the stream that captures, if any: the emulator allows one
// capture at a time.
static Stream* capturing = nullptr;
static long long graph_launches = 0;

// unsafe_during_capture fails a call that CUDA forbids while a stream
// captures, in global mode on any thread and in thread-local mode on the
// capturing thread, and invalidates the capture.
static bool unsafe_during_capture() {
  if (!capturing) return false;
  if (capturing->mode == kCaptureRelaxed) return false;
  if (capturing->mode == kCaptureThreadLocal && !pthread_equal(capturing->thread, pthread_self())) return false;
  capturing->invalidated = true;
  return true;
}

static CUresult check_launch(void* f, const unsigned g[3], const unsigned b[3]) {
  const unsigned long long threads = (unsigned long long)b[0] * b[1] * b[2];
  if (!f || g[0] < 1 || g[1] < 1 || g[2] < 1 || threads < 1 || g[0] > 2147483647u || g[1] > 65535 || g[2] > 65535) {
    return kInvalidValue;
  }
  if (threads > 1024 || b[0] > 1024 || b[1] > 1024 || b[2] > 64) return kInvalidValue;
  return kSuccess;
}

// run_grid runs a checked launch to completion.
static void run_grid(Function* fn, const unsigned g[3], const unsigned b[3], void** params) {
  block_dim = cnnc_uint3{b[0], b[1], b[2]};
  grid_dim = cnnc_uint3{g[0], g[1], g[2]};
  body = [fn, params]() { fn->k->fn(params); };
  for (unsigned z = 0; z < g[2]; ++z)
    for (unsigned y = 0; y < g[1]; ++y)
      for (unsigned x = 0; x < g[0]; ++x) {
        block_idx = cnnc_uint3{x, y, z};
        run_block((int)(b[0] * b[1] * b[2]));
      }
}

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
CUresult cuCtxSynchronize() { return unsafe_during_capture() ? kCaptureUnsupported : kSuccess; }
CUresult cuMemGetInfo_v2(size_t* free, size_t* total) { *free = *total = size_t(1) << 32; return kSuccess; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  if (unsafe_during_capture()) return kCaptureUnsupported;
  void* m = calloc(1, bytes);
  if (!m) return 2;
  *p = (CUdeviceptr)m;
  return kSuccess;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
  if (unsafe_during_capture()) return kCaptureUnsupported;
  free((void*)p);
  return kSuccess;
}
CUresult cuMemAllocHost_v2(void** p, size_t bytes) {
  *p = calloc(1, bytes);
  return *p ? kSuccess : 2;
}
CUresult cuMemFreeHost(void* p) {
  free(p);
  return kSuccess;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
  if (unsafe_during_capture()) return kCaptureUnsupported;
  memcpy((void*)dst, src, bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
  if (unsafe_during_capture()) return kCaptureUnsupported;
  memcpy(dst, (const void*)src, bytes);
  return kSuccess;
}
CUresult cuMemsetD32_v2(CUdeviceptr p, unsigned v, size_t n) {
  if (unsafe_during_capture()) return kCaptureUnsupported;
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
  (void)shared; (void)extra;
  const unsigned g[3] = {gx, gy, gz}, b[3] = {bx, by, bz};
  if (capturing && !stream) {
    // The legacy stream waits for every blocking stream, the capturing one
    // too, which a capture cannot record.
    capturing->invalidated = true;
    return kCaptureImplicit;
  }
  if (CUresult r = check_launch(f, g, b)) {
    if (capturing && stream == capturing) capturing->invalidated = true;
    return r;
  }
  Function* fn = static_cast<Function*>(f);
  if (capturing && stream == capturing) {
    Launch l{fn, {gx, gy, gz}, {bx, by, bz}, {}, {}};
    for (size_t i = 0; i < fn->k->sizes.size(); ++i) {
      const size_t n = fn->k->sizes[i];
      l.args.resize((l.args.size() + 7) / 8 * 8);  // keep every value aligned
      l.offsets.push_back(l.args.size());
      const char* v = static_cast<const char*>(params[i]);
      l.args.insert(l.args.end(), v, v + n);
    }
    capturing->capture->launches.push_back(std::move(l));
    return kSuccess;
  }
  run_grid(fn, g, b, params);
  return kSuccess;
}
CUresult cuStreamCreate(void** s, unsigned) { *s = new Stream; return kSuccess; }
CUresult cuStreamDestroy_v2(void* s) {
  if (!s || s == capturing) return kIllegalState;
  delete static_cast<Stream*>(s);
  return kSuccess;
}
CUresult cuStreamSynchronize(void* s) {
  if (capturing && s == capturing) {
    capturing->invalidated = true;
    return kCaptureUnsupported;
  }
  return kSuccess;
}
CUresult cuStreamBeginCapture_v2(void* s, int mode) {
  const char* off = getenv("CNNC_EMU_NO_GRAPHS");
  if (off && strcmp(off, "1") == 0) return kNotSupported;
  if (!s) return kCaptureUnsupported;  // the legacy stream cannot capture
  if (capturing || mode < kCaptureGlobal || mode > kCaptureRelaxed) return kIllegalState;
  Stream* st = static_cast<Stream*>(s);
  st->capture = new Graph;
  st->invalidated = false;
  st->mode = mode;
  st->thread = pthread_self();
  capturing = st;
  return kSuccess;
}
CUresult cuStreamEndCapture(void* s, void** graph) {
  Stream* st = static_cast<Stream*>(s);
  if (!st || st != capturing) return kIllegalState;
  if (st->mode != kCaptureRelaxed && !pthread_equal(st->thread, pthread_self())) return kCaptureWrongThread;
  capturing = nullptr;
  if (st->invalidated) {
    delete st->capture;
    st->capture = nullptr;
    *graph = nullptr;
    return kCaptureInvalidated;
  }
  *graph = st->capture;
  st->capture = nullptr;
  return kSuccess;
}
CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags) {
  if (!graph || flags != 0) return kInvalidValue;
  *exec = new Graph(*static_cast<Graph*>(graph));
  return kSuccess;
}
CUresult cuGraphLaunch(void* exec, void* stream) {
  if (!exec) return kInvalidValue;
  if (capturing) {
    // Replaying into a capture (or, from the legacy stream, beside one) is
    // beyond the emulator.
    capturing->invalidated = true;
    return kCaptureUnsupported;
  }
  (void)stream;
  for (Launch& l : static_cast<Graph*>(exec)->launches) {
    std::vector<void*> params;
    for (size_t off : l.offsets) params.push_back(l.args.data() + off);
    run_grid(l.fn, l.grid, l.block, params.data());
  }
  ++graph_launches;
  return kSuccess;
}
CUresult cuGraphExecDestroy(void* exec) {
  if (!exec) return kInvalidValue;
  delete static_cast<Graph*>(exec);
  return kSuccess;
}
CUresult cuGraphDestroy(void* graph) {
  if (!graph) return kInvalidValue;
  delete static_cast<Graph*>(graph);
  return kSuccess;
}
long long cnnc_emu_graph_launches() { return graph_launches; }
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
