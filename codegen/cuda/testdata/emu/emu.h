// emu.h compiles a generated model.cu as C++ for the host, so that its
// kernels can run in the CUDA emulator of emu.cc. It is included before
// model.cu (clang++ -include emu.h) and defines CUDA's keywords, builtin
// variables and intrinsics as the emulator implements them.
#ifndef CNNC_EMU_H
#define CNNC_EMU_H

#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#define CNNC_EMU 1

struct cnnc_uint3 {
  unsigned x, y, z;
};

namespace cnnc_emu {
extern cnnc_uint3 thread_idx, block_idx, block_dim, grid_dim;
void syncthreads();
// register_kernel makes a kernel known by name: fn calls it with the
// parameter block of cuLaunchKernel, whose parameters have the given sizes
// (which stream capture needs to copy their values).
void register_kernel(const char* name, std::function<void(void**)> fn, std::vector<std::size_t> sizes);

template <class... A, std::size_t... I>
void call_with(void (*f)(A...), void** p, std::index_sequence<I...>) {
  f(*static_cast<A*>(p[I])...);
}

struct Registrar {
  template <class... A>
  Registrar(const char* name, void (*f)(A...)) {
    register_kernel(name, [f](void** p) { call_with(f, p, std::index_sequence_for<A...>{}); }, {sizeof(A)...});
  }
};
}  // namespace cnnc_emu

#define CNNC_EMU_REGISTER(k) static cnnc_emu::Registrar cnnc_emu_reg_##k(#k, k);

#define __device__
#define __global__
#define __forceinline__ inline
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __launch_bounds__(...)
#define threadIdx cnnc_emu::thread_idx
#define blockIdx cnnc_emu::block_idx
#define blockDim cnnc_emu::block_dim
#define gridDim cnnc_emu::grid_dim
#define __syncthreads() cnnc_emu::syncthreads()

static inline float __int_as_float(int x) {
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}
static inline float __fmul_rn(float x, float y) {
  volatile float r = x * y;
  return r;
}
static inline float __fadd_rn(float x, float y) {
  volatile float r = x + y;
  return r;
}
static inline float __fsub_rn(float x, float y) {
  volatile float r = x - y;
  return r;
}

#endif  // CNNC_EMU_H
