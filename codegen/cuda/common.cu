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

// A cnnc_f4 is four floats read from shared memory in one access: NVRTC's
// float4, or a struct of the same layout for clang's syntax check and the
// CPU emulator.
#ifdef __CUDACC_RTC__
typedef float4 cnnc_f4;
#else
struct alignas(16) cnnc_f4 {
  float x, y, z, w;
};
#endif

// cnnc_gemm_load fetches a thread's L elements of one step of an operand,
// at k from kb, into r: element e = tid + l*T of the BR x BK step has row
// e / BK and depth e % BK when KFAST (consecutive threads read
// consecutive k), else row e % BR and depth e / BR. at(row, k) reads an
// element; rows from n rows and depths from k1 on read as 0.
template <int L, int T, int BR, int BK, bool KFAST, class F>
static __device__ __forceinline__ void cnnc_gemm_load(float (&r)[L], unsigned tid, int r0, int n, int kb, int k1, const F& at) {
#pragma unroll
  for (int l = 0; l < L; ++l) {
    const unsigned e = tid + l * T;
    const int rr = r0 + (KFAST ? e / BK : e % BR), k = kb + (KFAST ? e % BK : e / BR);
    r[l] = (rr < n && k < k1) ? at(rr, k) : 0.0f;
  }
}

// cnnc_gemm_put stores what cnnc_gemm_load fetched into a step's buffer
// in shared memory, laid out [BK][P].
template <int L, int T, int BR, int BK, int P, bool KFAST>
static __device__ __forceinline__ void cnnc_gemm_put(const float (&r)[L], float (*buf)[P], unsigned tid) {
#pragma unroll
  for (int l = 0; l < L; ++l) {
    const unsigned e = tid + l * T;
    buf[KFAST ? e % BK : e / BR][KFAST ? e / BK : e % BR] = r[l];
  }
}

// cnnc_gemm_frag reads a thread's N values of one depth of a step: runs of
// 4 at 4*t + q*S*4 when N is a multiple of 4 (the threads of a warp read
// consecutive runs, without bank conflicts), else single values at
// t + q*S.
template <int N, int S>
static __device__ __forceinline__ void cnnc_gemm_frag(float (&v)[N], const float* row, int t) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int q = 0; q < N / 4; ++q) {
      const cnnc_f4 f = *reinterpret_cast<const cnnc_f4*>(row + q * S * 4 + t * 4);
      v[4 * q] = f.x, v[4 * q + 1] = f.y, v[4 * q + 2] = f.z, v[4 * q + 3] = f.w;
    }
  } else {
#pragma unroll
    for (int q = 0; q < N; ++q) v[q] = row[t + q * S];
  }
}

// cnnc_gemm_at is the tile's row (or column) of a thread's i-th value, as
// cnnc_gemm_frag reads them.
template <int N, int S>
static __device__ __forceinline__ int cnnc_gemm_at(int i, int t) {
  return N % 4 == 0 ? (i / 4) * (S * 4) + t * 4 + i % 4 : t + i * S;
}

// cnnc_gemm_steps runs the steps through k, BK at a time, of a tile of
// G's product (see cnnc_gemm_tile) on T threads: each step's BK rows of
// A's BM and B's BN elements go to shared memory, As and Bs, whose rows
// are PA and PB floats apart, and step(as, bs) multiplies them. The steps
// are double-buffered: a thread stores the step it loaded into one
// buffer, loads the next step into registers and multiplies the buffer,
// so that one barrier a step suffices and the loads overlap the
// arithmetic.
template <class G, int T, int PA, int PB, class F>
static __device__ __forceinline__ void cnnc_gemm_steps(const G& g, int M, int m0, int n0, int k0, int k1, float (&As)[2][G::BK][PA],
                                                       float (&Bs)[2][G::BK][PB], const F& step) {
  constexpr int BM = G::BM, BN = G::BN, BK = G::BK;
  constexpr int LA = BM * BK / T, LB = BN * BK / T;  // elements each thread loads a step
  static_assert(LA * T == BM * BK && LB * T == BN * BK, "a step's elements must divide among the threads");
  const unsigned tid = threadIdx.x;
  const auto a = [&g](int m, int k) { return g.a(m, k); };
  const auto b = [&g](int j, int k) { return g.b(k, j); };
  float ra[LA], rb[LB];
  cnnc_gemm_load<LA, T, BM, BK, G::AKFAST>(ra, tid, m0, M, k0, k1, a);
  cnnc_gemm_load<LB, T, BN, BK, G::BKFAST>(rb, tid, n0, G::NC, k0, k1, b);
  int s = 0;
  for (int kb = k0; kb < k1; kb += BK) {
    cnnc_gemm_put<LA, T, BM, BK, PA, G::AKFAST>(ra, As[s], tid);
    cnnc_gemm_put<LB, T, BN, BK, PB, G::BKFAST>(rb, Bs[s], tid);
    __syncthreads();
    if (kb + BK < k1) {
      cnnc_gemm_load<LA, T, BM, BK, G::AKFAST>(ra, tid, m0, M, kb + BK, k1, a);
      cnnc_gemm_load<LB, T, BN, BK, G::BKFAST>(rb, tid, n0, G::NC, kb + BK, k1, b);
    }
    step(As[s], Bs[s]);
    s ^= 1;
  }
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
//   g.store(m, j, v)       what to do with C's element;
//   G::STORE4, g.store4(m, j, v0, v1, v2, v3)   if STORE4, what to do with
//                          rows m to m+3 of column j (m a multiple of 4),
//                          which the tile then calls instead of store
//                          where each thread holds runs of 4 rows; M must
//                          then be a multiple of 4.
//
// M is the number of rows. Every output is one thread's sum over k in
// increasing order, so results do not depend on the launch.
//
// The steps through k are double-buffered in shared memory (see
// cnnc_gemm_steps).
template <class G>
static __device__ __forceinline__ void cnnc_gemm_tile(const G& g, int M, int m0, int n0, int k0, int k1) {
  constexpr int BM = G::BM, BN = G::BN, BK = G::BK, TM = G::TM, TN = G::TN;
  constexpr int RT = BM / TM, CT = BN / TN, T = RT * CT;
  constexpr int PA = BM + 4, PB = BN + 4;  // row pitches, multiples of 4 for the 4-float reads
  __shared__ __align__(16) float As[2][BK][PA];
  __shared__ __align__(16) float Bs[2][BK][PB];
  const unsigned tid = threadIdx.x;
  const int tr = tid / CT, tc = tid % CT;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  cnnc_gemm_steps<G, T>(g, M, m0, n0, k0, k1, As, Bs, [&](const float (*as)[PA], const float (*bs)[PB]) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float av[TM], bv[TN];
      cnnc_gemm_frag<TM, RT>(av, as[kk], tr);
      cnnc_gemm_frag<TN, CT>(bv, bs[kk], tc);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
    }
  });
  if constexpr (G::STORE4 != 0 && TM % 4 == 0) {
    // Each run of 4 rows at once: M is then a multiple of 4.
#pragma unroll
    for (int i = 0; i < TM; i += 4)
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int m = m0 + cnnc_gemm_at<TM, RT>(i, tr), c = n0 + cnnc_gemm_at<TN, CT>(j, tc);
        if (m < M && c < G::NC) g.store4(m, c, acc[i][j], acc[i + 1][j], acc[i + 2][j], acc[i + 3][j]);
      }
  } else {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int m = m0 + cnnc_gemm_at<TM, RT>(i, tr), c = n0 + cnnc_gemm_at<TN, CT>(j, tc);
        if (m < M && c < G::NC) g.store(m, c, acc[i][j]);
      }
  }
}

// cnnc_copy copies count words.
extern "C" __global__ void __launch_bounds__(256) cnnc_copy(float* __restrict__ dst, const float* __restrict__ src, int count) {
  for (int i = blockIdx.x * 256 + threadIdx.x; i < count; i += gridDim.x * 256) dst[i] = src[i];
}

// cnnc_sgd is one step of runtime.SGD (PyTorch's SGD, dampening 0) over
// count parameters w with gradients g and momentum buffers v, in float32
// with one rounding per operation (no fused multiply-add) and a subnormal
// momentum flushed to zero, so that it matches the CPU bit for bit.
// launch: grid min(ceil(count/256), 4096), block 256
extern "C" __global__ void __launch_bounds__(256) cnnc_sgd(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v,
                                                           int count, float lr, float mu, float wd, int nesterov, int first) {
  for (int i = blockIdx.x * 256 + threadIdx.x; i < count; i += gridDim.x * 256) {
    float d = g[i];
    const float wi = w[i];
    if (wd != 0.0f) d = __fadd_rn(d, __fmul_rn(wd, wi));
    if (mu != 0.0f) {
      float vi = first ? d : __fadd_rn(__fmul_rn(mu, v[i]), d);
      if (fabsf(vi) < 1.17549435e-38f) vi = 0.0f;  // subnormal or -0; NaN stays
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
