// prelude.h lets Debian's clang compile a generated model.cu to PTX with no
// CUDA installation:
//
//   clang -x cuda -std=c++17 --cuda-device-only -nocudainc -nocudalib \
//         --cuda-gpu-arch=sm_80 -include prelude.h -S -o model.ptx model.cu
//
// It declares the few CUDA builtins and functions the kernels use, which
// NVRTC knows without any header. Math functions are forwarded to
// libdevice's __nv_* names, which stay undefined in the PTX: the check is
// of the source, not a build to run.
#ifndef CNNC_PRELUDE_H
#define CNNC_PRELUDE_H

#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))

// threadIdx, blockIdx, blockDim and gridDim.
#include "__clang_cuda_builtin_vars.h"

// __syncthreads is a clang builtin for NVPTX.

#define CNNC_LIBDEVICE1(name, T) \
  extern "C" __device__ T __nv_##name(T); \
  static __device__ __forceinline__ T name(T x) { return __nv_##name(x); }
#define CNNC_LIBDEVICE2(name, T) \
  extern "C" __device__ T __nv_##name(T, T); \
  static __device__ __forceinline__ T name(T x, T y) { return __nv_##name(x, y); }

CNNC_LIBDEVICE1(expf, float)
CNNC_LIBDEVICE1(logf, float)
CNNC_LIBDEVICE1(tanhf, float)
CNNC_LIBDEVICE1(sqrtf, float)
CNNC_LIBDEVICE1(rsqrtf, float)
CNNC_LIBDEVICE1(fabsf, float)
CNNC_LIBDEVICE1(sqrt, double)
CNNC_LIBDEVICE2(fmaxf, float)
CNNC_LIBDEVICE2(fminf, float)
CNNC_LIBDEVICE2(fmul_rn, float)
CNNC_LIBDEVICE2(fadd_rn, float)
CNNC_LIBDEVICE2(fsub_rn, float)

static __device__ __forceinline__ float __fmul_rn(float x, float y) { return fmul_rn(x, y); }
static __device__ __forceinline__ float __fadd_rn(float x, float y) { return fadd_rn(x, y); }
static __device__ __forceinline__ float __fsub_rn(float x, float y) { return fsub_rn(x, y); }
static __device__ __forceinline__ float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
static __device__ __forceinline__ float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }

#endif  // CNNC_PRELUDE_H
