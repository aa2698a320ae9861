// cnnc's device library: what every generated model.cu shares. The include
// guard lets several models' sources be compiled as one unit.
#ifndef CNNC_COMMON_CU
#define CNNC_COMMON_CU

#define CNNC_NEG_INF __int_as_float((int)0xff800000u)

static __device__ __forceinline__ int cnnc_min(int a, int b) { return a < b ? a : b; }
static __device__ __forceinline__ int cnnc_max(int a, int b) { return a > b ? a : b; }

// cnnc_splitmix64 is SplitMix64's mix, as runtime.SplitMix64.
static __device__ __forceinline__ unsigned long long cnnc_splitmix64(unsigned long long z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// cnnc_uniform01 is runtime.Uniform01: a uniform number in [0, 1) that
// depends only on its arguments. Dropout keeps element index iff
// cnnc_uniform01(layer seed ^ run seed, step, index) < keep.
static __device__ __forceinline__ float cnnc_uniform01(unsigned long long seed, unsigned long long step, unsigned long long index) {
  unsigned long long x = cnnc_splitmix64(seed ^ cnnc_splitmix64(step ^ cnnc_splitmix64(index)));
  return (float)(x >> 40) * (1.0f / 16777216.0f);
}

// cnnc_sign is -1, 0 or 1 (0 for 0 and NaN).
static __device__ __forceinline__ float cnnc_sign(float x) {
  return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
}

// cnnc_block_sum sums v over the T threads of a block (T a power of two)
// by a tree in shared memory, in the same order every time; every thread
// gets the sums.
template <int T, int Q>
static __device__ __forceinline__ void cnnc_block_sum(float (&v)[Q]) {
  __shared__ float sh[Q][T];
  const int t = threadIdx.x;
  for (int q = 0; q < Q; ++q) sh[q][t] = v[q];
  __syncthreads();
  for (int s = T / 2; s > 0; s >>= 1) {
    if (t < s) {
      for (int q = 0; q < Q; ++q) sh[q][t] += sh[q][t + s];
    }
    __syncthreads();
  }
  for (int q = 0; q < Q; ++q) v[q] = sh[q][0];
  __syncthreads();
}

// cnnc_gemm_tile computes one BM x BN tile, at rows m0 and columns n0, of
// C = A * B over k in [k0, k1), where G describes the product:
//
//   G::BM, BN, BK   the tile and the depth of one step through k;
//   G::TM, TN       the outputs each thread holds (BM/TM * BN/TN threads);
//   G::NC           the number of columns of C;
//   G::AKFAST       whether consecutive threads load consecutive k of A
//                   (else consecutive m), matching A's layout in memory;
//   G::BKFAST       likewise for B (else consecutive columns);
//   g.a(m, k), g.b(k, j)   the elements of A and B;
//   g.store(m, j, v)       what to do with C's element.
//
// M is the number of rows. Every output is one thread's sum over k in
// increasing order, so results do not depend on the launch.
template <class G>
static __device__ __forceinline__ void cnnc_gemm_tile(const G& g, int M, int m0, int n0, int k0, int k1) {
  constexpr int BM = G::BM, BN = G::BN, BK = G::BK, TM = G::TM, TN = G::TN;
  constexpr int RT = BM / TM, CT = BN / TN, T = RT * CT;
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  const int tid = threadIdx.x;
  const int tr = tid / CT, tc = tid % CT;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  for (int kb = k0; kb < k1; kb += BK) {
    for (int e = tid; e < BM * BK; e += T) {
      const int mm = G::AKFAST ? e / BK : e % BM;
      const int kk = G::AKFAST ? e % BK : e / BM;
      const int m = m0 + mm, k = kb + kk;
      As[kk][mm] = (m < M && k < k1) ? g.a(m, k) : 0.0f;
    }
    for (int e = tid; e < BN * BK; e += T) {
      const int jj = G::BKFAST ? e / BK : e % BN;
      const int kk = G::BKFAST ? e % BK : e / BN;
      const int j = n0 + jj, k = kb + kk;
      Bs[kk][jj] = (j < G::NC && k < k1) ? g.b(k, j) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[kk][tr + i * RT];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tc + j * CT];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int m = m0 + tr + i * RT, c = n0 + tc + j * CT;
      if (m < M && c < G::NC) g.store(m, c, acc[i][j]);
    }
}

// cnnc_copy copies count words.
extern "C" __global__ void __launch_bounds__(256) cnnc_copy(float* __restrict__ dst, const float* __restrict__ src, int count) {
  for (int i = blockIdx.x * 256 + threadIdx.x; i < count; i += gridDim.x * 256) dst[i] = src[i];
}

// cnnc_sgd is one step of runtime.SGD (PyTorch's SGD, dampening 0) over
// count parameters w with gradients g and momentum buffers v, in float32
// with one rounding per operation (no fused multiply-add), so that it
// matches the CPU bit for bit.
// launch: grid min(ceil(count/256), 4096), block 256
extern "C" __global__ void __launch_bounds__(256) cnnc_sgd(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v,
                                                           int count, float lr, float mu, float wd, int nesterov, int first) {
  for (int i = blockIdx.x * 256 + threadIdx.x; i < count; i += gridDim.x * 256) {
    float d = g[i];
    const float wi = w[i];
    if (wd != 0.0f) d = __fadd_rn(d, __fmul_rn(wd, wi));
    if (mu != 0.0f) {
      const float vi = first ? d : __fadd_rn(__fmul_rn(mu, v[i]), d);
      v[i] = vi;
      d = nesterov ? __fadd_rn(d, __fmul_rn(mu, vi)) : vi;
    }
    w[i] = __fsub_rn(wi, __fmul_rn(lr, d));
  }
}

#ifdef CNNC_EMU
CNNC_EMU_REGISTER(cnnc_copy)
CNNC_EMU_REGISTER(cnnc_sgd)
#endif

#endif  // CNNC_COMMON_CU
