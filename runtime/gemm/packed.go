package gemm

import (
	"fmt"

	"github.com/cnnc/cnnc/runtime"
)

// PackedASize returns how many floats PackA writes for an m x k matrix:
// its rows rounded up to whole panels of 6 (codegen/asm.MR), times k.
func PackedASize(m, k int) int { return ceilDiv(m, mr) * mr * k }

// PackA packs the m x k matrix A (stored k x m and transposed when transA,
// rows lda apart) into dst in the layout the micro-kernels read, so that
// many GEMMs can share one packing: a convolution multiplies the same
// weight by every sample of a batch, and packing it per sample cost as
// much as a small layer's B panels. For each block of kcBlock columns of
// A, dst holds each panel of 6 rows, column by column. It panics if a
// slice is too short.
func PackA(dst []float32, transA bool, m, k int, a []float32, lda int) {
	if transA {
		checkMatrix("A", k, m, a, lda)
	} else {
		checkMatrix("A", m, k, a, lda)
	}
	if need := PackedASize(m, k); len(dst) < need {
		panic(fmt.Sprintf("gemm: PackA: len(dst) = %d < %d for %d x %d", len(dst), need, m, k))
	}
	rows := ceilDiv(m, mr) * mr
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		d := dst[pc*rows : pc*rows+rows*kc]
		if transA {
			packAT(d, a, lda, 0, pc, m, kc)
		} else {
			packAN(d, a, lda, 0, pc, m, kc)
		}
	}
}

// checkPacked panics if ap is too short to be an m x k matrix from PackA.
func checkPacked(m, k int, ap []float32) {
	if need := PackedASize(m, k); len(ap) < need {
		panic(fmt.Sprintf("gemm: len(packed A) = %d < %d for %d x %d", len(ap), need, m, k))
	}
}

// SgemmPacked is SgemmEpi with A packed by PackA(ap, _, m, k, ...) and B
// not transposed: the same bits as SgemmEpi on the matrix packed.
func SgemmPacked(pool *runtime.Pool, m, n, k int, ap []float32, b []float32, ldb int, c []float32, ldc int, accumulate bool, ep Epilogue) {
	checkPacked(m, k, ap)
	checkMatrix("B", k, n, b, ldb)
	checkMatrix("C", m, n, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 || n == 0 || k == 0 {
		// No packed product to read: SgemmEpi's empty cases.
		SgemmEpi(pool, false, false, m, n, k, nil, max(k, 1), b, ldb, c, ldc, accumulate, ep)
		return
	}
	launch(pool, call{m: m, n: n, k: k, ap: ap, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate, ep: ep}, nil)
}

// SgemmIm2colPacked is SgemmIm2col with A packed by
// PackA(ap, _, m, b.Rows(), ...): the same bits as SgemmIm2col.
func SgemmIm2colPacked(pool *runtime.Pool, m int, ap []float32, b Im2col, c []float32, ldc int, accumulate bool, ep Epilogue) {
	b.check()
	n, k := b.Cols(), b.Rows()
	checkPacked(m, k, ap)
	checkMatrix("C", m, n, c, ldc)
	checkEpilogue(m, n, ep)
	if m == 0 {
		return
	}
	launch(pool, call{m: m, n: n, k: k, ap: ap, c: c, ldc: ldc, accumulate: accumulate, ep: ep}, &b)
}
