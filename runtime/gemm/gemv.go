package gemm

import "github.com/cnnc/cnnc/runtime"

// Gemv computes y = A*x for the row-major m x k matrix A (rows lda apart):
// y[i] = sum over p < k of A[i, p]*x[p], for i < m, on the calling
// goroutine. It is the product a batch-1 linear layer needs: unlike Sgemm
// it reads A where it lies instead of packing it first. The assembly
// kernel handles four rows at a time and sums in a different order from
// the Go one, so the two may differ in the last bits.
func Gemv(m, k int, a []float32, lda int, x, y []float32) {
	checkMatrix("A", m, k, a, lda)
	checkMatrix("X", 1, k, x, max(k, 1))
	checkMatrix("Y", 1, m, y, max(m, 1))
	if m == 0 {
		return
	}
	if k == 0 {
		clear(y[:m])
		return
	}
	if useAsm {
		i := 0
		for ; i+4 <= m; i += 4 {
			gemv4(k, &a[i*lda], lda, &x[0], &y[i])
		}
		switch m - i {
		case 3:
			gemv3(k, &a[i*lda], lda, &x[0], &y[i])
		case 2:
			gemv2(k, &a[i*lda], lda, &x[0], &y[i])
		case 1:
			gemv1(k, &a[i*lda], lda, &x[0], &y[i])
		}
		return
	}
	gemvGo(m, k, a, lda, x, y)
}

// GemvPar computes y_s = A*x_s for n vectors, x_s = x[s*ldx:][:k] and
// y_s = y[s*ldy:][:m], with A's rows shared among pool's workers in
// blocks of four, each block as Gemv computes it: the bits are Gemv's
// whatever the number of workers. A nil pool, or a product of fewer than
// eight rows, runs on the calling goroutine. It is a small batch's linear
// layer whose weight is larger than a core's L2: the product then runs at
// the rate one core fetches the weight from L3, and two fetch it about
// twice as fast.
func GemvPar(pool *runtime.Pool, n, m, k int, a []float32, lda int, x []float32, ldx int, y []float32, ldy int) {
	gemvPar(pool, n, m, k, a, lda, x, ldx, y, ldy, false)
}

// gemvPar is GemvPar, or with panels LinearGemv's products for A a
// weight stored as column panels (lda = k).
func gemvPar(pool *runtime.Pool, n, m, k int, a []float32, lda int, x []float32, ldx int, y []float32, ldy int, panels bool) {
	checkMatrix("A", m, k, a, lda)
	checkMatrix("X", n, k, x, max(ldx, 1))
	checkMatrix("Y", n, m, y, max(ldy, 1))
	if n == 0 || m == 0 {
		return
	}
	if pool == nil || pool.Workers() == 1 || m < 8 {
		for s := range n {
			gemvBlock(panels, 0, m, m, k, a, lda, x[s*ldx:], y[s*ldy:])
		}
		return
	}
	// A driver from the free list carries the call, so that it does not
	// allocate: A as a, the n vectors as b (ldb apart) and their products
	// as c (ldc apart).
	g := getDriver(pool.Workers())
	g.call = call{m: m, n: n, k: k, a: a, lda: lda, b: x, ldb: ldx, c: y, ldc: ldy, panels: panels}
	pool.For(m/4, g.gemvFn)
	g.call = call{}
	putDriver(g)
}

// gemvRows runs GemvPar's blocks of four rows [lo, hi) for every vector;
// the last block takes the rows past the last whole one.
func (g *driver) gemvRows(lo, hi int) {
	r0, r1 := 4*lo, 4*hi
	if hi == g.m/4 {
		r1 = g.m
	}
	for s := range g.n {
		gemvBlock(g.panels, r0, r1, g.m, g.k, g.a, g.lda, g.b[s*g.ldb:], g.c[s*g.ldc:])
	}
}

// gemvBlock sets y[r] = (A*x)[r] for rows [r0, r1) of A, m x k, rows lda
// apart, or with panels a weight stored as column panels (lda = k).
func gemvBlock(panels bool, r0, r1, m, k int, a []float32, lda int, x, y []float32) {
	if panels {
		gemvPanelRows(r0, r1, m, k, a, x, y)
		return
	}
	Gemv(r1-r0, k, a[r0*lda:], lda, x, y[r0:])
}

// gemvGo is the pure Go Gemv: four rows at a time, sharing each load of x.
func gemvGo(m, k int, a []float32, lda int, x, y []float32) {
	x = x[:k]
	i := 0
	for ; i+4 <= m; i += 4 {
		r0 := a[i*lda:][:k]
		r1 := a[(i+1)*lda:][:k]
		r2 := a[(i+2)*lda:][:k]
		r3 := a[(i+3)*lda:][:k]
		var s0, s1, s2, s3 float32
		for p, v := range x {
			s0 += r0[p] * v
			s1 += r1[p] * v
			s2 += r2[p] * v
			s3 += r3[p] * v
		}
		y[i], y[i+1], y[i+2], y[i+3] = s0, s1, s2, s3
	}
	for ; i < m; i++ {
		r := a[i*lda:][:k]
		var s float32
		for p, v := range x {
			s += r[p] * v
		}
		y[i] = s
	}
}
