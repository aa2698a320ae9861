// cnnc's tensor-core GEMM tile, in the model.cu of models compiled with
// Config.TF32: the convolutions multiply on the tensor cores, which take
// TF32 operands (10-bit mantissas) and add in float32. Each operand is
// split into a TF32 number and a TF32 remainder, and a product of two is
// hi*hi + hi*lo + lo*hi (three tensor-core products; lo*lo is below
// float32's precision): plain TF32, as PyTorch's cudnn.allow_tf32, errs
// by about 1e-3 of each term, which a weight gradient's sum over a batch,
// where the terms cancel, turns into errors of several percent of the
// result. It needs compute capability 8.0 or later. The guard lets several
// models' sources be compiled as one unit.
#ifndef CNNC_TF32_CU
#define CNNC_TF32_CU

#ifndef CNNC_EMU
// cnnc_tf32 rounds x to TF32 (nearest, ties away from zero), as the
// tensor cores' operands.
static __device__ __forceinline__ unsigned cnnc_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

// cnnc_mma_tf32 is d += a*b for one 16x8x8 product of the warp: a holds
// this lane's 4 elements of the 16x8 A, b its 2 of the 8x8 B, d its 4 of
// the 16x8 C (mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32).
static __device__ __forceinline__ void cnnc_mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// cnnc_tf32_split splits x into hi + lo, each a TF32 number: hi is x
// rounded to TF32 and lo the rest, rounded.
static __device__ __forceinline__ void cnnc_tf32_split(float x, unsigned& hi, unsigned& lo) {
  hi = cnnc_tf32(x);
  lo = cnnc_tf32(x - __uint_as_float(hi));
}

// cnnc_gemm_tile_tf32 computes one BM x BN tile of C = A * B as
// cnnc_gemm_tile does, with the same G, but on the tensor cores: warps of
// 32 rows by min(BN, 32) columns, each a grid of 16x8 products over steps
// of 8 k (BM a multiple of 32, BN of 8; (BM/32) * (BN/min(BN, 32)) warps).
// The steps through k are double-buffered as in cnnc_gemm_tile; rows of
// shared memory are padded by 8 floats, so that the fragments' reads
// (lane l reads row l%4 or l%4+4, column l/4) hit 32 different banks.
// Lane l's outputs of a 16x8 product are rows l/4 and l/4+8, columns
// 2*(l%4) and 2*(l%4)+1. The sums' order is the tensor cores', the same
// for every launch.
template <class G>
static __device__ __forceinline__ void cnnc_gemm_tile_tf32(const G& g, int M, int m0, int n0, int k0, int k1) {
  constexpr int BM = G::BM, BN = G::BN, BK = G::BK;
  constexpr int WN = BN < 32 ? BN : 32, MI = 2, NI = WN / 8, WX = BN / WN;
  constexpr int T = (BM / 32) * WX * 32;
  static_assert(BM % 32 == 0 && BN % 8 == 0 && BK % 8 == 0, "the tile must divide into the warps' 16x8x8 products");
  constexpr int PA = BM + 8, PB = BN + 8;
  __shared__ __align__(16) float As[2][BK][PA];
  __shared__ __align__(16) float Bs[2][BK][PB];
  const unsigned tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int wm = (warp / WX) * 32, wn = (warp % WX) * WN;
  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;
  cnnc_gemm_steps<G, T>(g, M, m0, n0, k0, k1, As, Bs, [&](const float (*as)[PA], const float (*bs)[PB]) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      unsigned ah[MI][4], al[MI][4], bh[NI][2], bl[NI][2];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        const int r = wm + i * 16 + gid;
        cnnc_tf32_split(as[kk + tig][r], ah[i][0], al[i][0]);
        cnnc_tf32_split(as[kk + tig][r + 8], ah[i][1], al[i][1]);
        cnnc_tf32_split(as[kk + tig + 4][r], ah[i][2], al[i][2]);
        cnnc_tf32_split(as[kk + tig + 4][r + 8], ah[i][3], al[i][3]);
      }
#pragma unroll
      for (int j = 0; j < NI; ++j) {
        const int c = wn + j * 8 + gid;
        cnnc_tf32_split(bs[kk + tig][c], bh[j][0], bl[j][0]);
        cnnc_tf32_split(bs[kk + tig + 4][c], bh[j][1], bl[j][1]);
      }
      // The small products first, then the large one.
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) {
          cnnc_mma_tf32(acc[i][j], al[i], bh[j]);
          cnnc_mma_tf32(acc[i][j], ah[i], bl[j]);
          cnnc_mma_tf32(acc[i][j], ah[i], bh[j]);
        }
    }
  });
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int m = m0 + wm + i * 16 + gid + (q / 2) * 8, c = n0 + wn + j * 8 + tig * 2 + q % 2;
        if (m < M && c < G::NC) g.store(m, c, acc[i][j][q]);
      }
}

#endif  // CNNC_TF32_CU
