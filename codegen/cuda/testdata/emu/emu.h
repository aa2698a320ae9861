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
static inline float __uint_as_float(unsigned x) {
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

// The TF32 tensor cores of tf32.cu. cnnc_tf32 rounds as cvt.rna.tf32.f32
// (to 10 mantissa bits, nearest, ties away from zero); cnnc_mma_tf32
// gathers the warp's fragments in static memory between two barriers of
// the block (cnnc_gemm_tile_tf32 has every thread of a block call it
// together) and computes this lane's four outputs of the 16x8x8 product,
// from the fragment layouts of mma.sync.aligned.m16n8k8.row.col.
static inline unsigned cnnc_tf32(float x) {
  unsigned u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  return u;
}
static inline void cnnc_mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  static unsigned fa[1024][4], fb[1024][2];
  const unsigned t = cnnc_emu::thread_idx.x, w = t / 32 * 32, gid = t % 32 / 4, tig = t % 4;
  std::memcpy(fa[t], a, sizeof a);
  std::memcpy(fb[t], b, sizeof b);
  cnnc_emu::syncthreads();
  float out[4];
  for (unsigned q = 0; q < 4; ++q) {
    const unsigned row = gid + q / 2 * 8, col = tig * 2 + q % 2;
    float sum = d[q];
    for (unsigned k = 0; k < 8; ++k) {
      const unsigned av = fa[w + row % 8 * 4 + k % 4][row / 8 + k / 4 * 2];
      const unsigned bv = fb[w + col * 4 + k % 4][k / 4];
      sum += __uint_as_float(av) * __uint_as_float(bv);
    }
    out[q] = sum;
  }
  cnnc_emu::syncthreads();
  std::memcpy(d, out, sizeof out);
}

#endif  // CNNC_EMU_H
