package gemm

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/cnnc/cnnc/runtime"
)

// Blocking for the AMD Zen 3 cores cnnc is tuned on (32 KiB L1d, 512 KiB
// L2 per core, 32 MiB L3); see doc.go for the loop nest.
const (
	mr = 6  // rows of a micro-tile; must match codegen/asm.MR
	nr = 16 // columns of a micro-tile; must match codegen/asm.NR

	// kcBlock is the depth of a packed panel: a 256 x 16 B panel is 16 KiB,
	// half of L1, and a 6 x 256 A panel 6 KiB.
	kcBlock = 256
	// mcBlock is the rows of A packed at a time: 144 x 256 floats is 144
	// KiB, well inside L2 next to the C tiles being written.
	mcBlock = 144
	// ncBlock is the columns of B packed at a time: 256 x 4080 floats is
	// about 4 MiB of L3.
	ncBlock = 4080
)

// Sgemm computes C = A*B, or C += A*B when accumulate is set, for row-major
// A (m x k, rows lda apart), B (k x n, rows ldb apart) and C (m x n, rows ldc
// apart), on the calling goroutine.
func Sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	SgemmPar(nil, false, false, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
}

// SgemmTrans computes C (+)= op(A)*op(B) on the calling goroutine, where
// op(A) is m x k and op(B) is k x n. If transA is set, A is stored k x m
// (rows lda apart) and op(A) is its transpose; likewise B is stored n x k
// when transB is set. C is m x n, rows ldc apart.
func SgemmTrans(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	SgemmPar(nil, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
}

// SgemmPar is SgemmTrans split over the workers of pool; a nil pool runs on
// the calling goroutine. Each element of C is computed by one worker, in the
// same order whatever the number of workers, so the result does not depend
// on pool's size.
func SgemmPar(pool *runtime.Pool, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !accumulate {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	workers := 1
	if pool != nil {
		workers = pool.Workers()
	}
	g := getDriver(workers)
	g.call = call{transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate}
	g.run(pool, workers)
	g.call = call{}
	putDriver(g)
}

// checkArgs panics if a slice is too short for the shapes and strides.
func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("A", ar, ac, a, lda)
	checkMatrix("B", br, bc, b, ldb)
	checkMatrix("C", m, n, c, ldc)
}

func checkMatrix(name string, rows, cols int, x []float32, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("gemm: ld%s = %d, want >= %d (columns of %s)", lower(name), ld, max(cols, 1), name))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; len(x) < need {
		panic(fmt.Sprintf("gemm: len(%s) = %d, want >= %d for %d x %d with stride %d", lower(name), len(x), need, rows, cols, ld))
	}
}

func lower(s string) string {
	return string(s[0] | 0x20)
}

// call holds the arguments of one Sgemm call.
type call struct {
	transA, transB bool
	m, n, k        int
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
	accumulate     bool
}

// A driver holds the packing buffers and the state of one call. The pool's
// For gets method values bound once in newDriver, so a call does not
// allocate.
type driver struct {
	call

	bufB []float32   // packed B block: panels of kc x nr
	bufA [][]float32 // per worker: packed A block, panels of kc x mr
	tile [][mr * nr]float32

	// The block being multiplied.
	jc, nc, pc, kc int
	overwrite      bool // first K block of a call that does not accumulate
	workers        int
	splitRows      bool // split C's row panels between workers, else column panels

	packBFn, computeFn func(lo, hi int)
}

var drivers struct {
	sync.Mutex
	free []*driver
}

// getDriver returns a driver with buffers for workers workers, reusing one
// from an earlier call when it can.
func getDriver(workers int) *driver {
	drivers.Lock()
	var g *driver
	if n := len(drivers.free); n > 0 {
		g = drivers.free[n-1]
		drivers.free = drivers.free[:n-1]
	}
	drivers.Unlock()
	if g == nil {
		g = &driver{}
		g.packBFn = g.packB
		g.computeFn = g.compute
	}
	for len(g.bufA) < workers {
		g.bufA = append(g.bufA, nil)
		g.tile = append(g.tile, [mr * nr]float32{})
	}
	return g
}

func putDriver(g *driver) {
	drivers.Lock()
	drivers.free = append(drivers.free, g)
	drivers.Unlock()
}

// aligned returns a slice of n floats starting on a 64-byte boundary, reusing
// buf when it is long enough.
func aligned(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	raw := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&raw[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return raw[off : off+n : off+n]
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func (g *driver) run(pool *runtime.Pool, workers int) {
	g.workers = workers
	ncMax := min(ncBlock, ceilDiv(g.n, nr)*nr)
	kcMax := min(kcBlock, g.k)
	g.bufB = aligned(g.bufB, ncMax*kcMax)
	for w := range workers {
		g.bufA[w] = aligned(g.bufA[w], min(mcBlock, ceilDiv(g.m, mr)*mr)*kcMax)
	}
	for jc := 0; jc < g.n; jc += ncBlock {
		g.jc, g.nc = jc, min(ncBlock, g.n-jc)
		panelsB := ceilDiv(g.nc, nr)
		panelsA := ceilDiv(g.m, mr)
		// Split whichever way gives the busiest worker fewer tiles; on a tie
		// split rows, where no worker repeats another's packing of A.
		rowTiles := ceilDiv(panelsA, workers) * panelsB
		colTiles := panelsA * ceilDiv(panelsB, workers)
		g.splitRows = rowTiles <= colTiles
		for pc := 0; pc < g.k; pc += kcBlock {
			g.pc, g.kc = pc, min(kcBlock, g.k-pc)
			g.overwrite = pc == 0 && !g.accumulate
			if workers > 1 && panelsB > 1 && g.kc*g.nc >= 16384 {
				pool.For(panelsB, g.packBFn)
			} else {
				g.packB(0, panelsB)
			}
			if workers > 1 {
				pool.For(workers, g.computeFn)
			} else {
				g.compute(0, 1)
			}
		}
	}
}

// packB packs B panels [lo, hi) of the current block.
func (g *driver) packB(lo, hi int) {
	for jp := lo; jp < hi; jp++ {
		j := jp * nr
		cols := min(nr, g.nc-j)
		dst := g.bufB[jp*nr*g.kc : (jp+1)*nr*g.kc]
		if g.transB {
			packBT(dst, g.b, g.ldb, g.pc, g.jc+j, g.kc, cols)
		} else {
			packBN(dst, g.b, g.ldb, g.pc, g.jc+j, g.kc, cols)
		}
	}
}

// compute runs workers [lo, hi) over their share of the current block.
func (g *driver) compute(lo, hi int) {
	panelsA := ceilDiv(g.m, mr)
	panelsB := ceilDiv(g.nc, nr)
	for w := lo; w < hi; w++ {
		if g.splitRows {
			r0 := w * panelsA / g.workers * mr
			r1 := min((w+1)*panelsA/g.workers*mr, g.m)
			g.macro(w, r0, r1, 0, panelsB)
		} else {
			g.macro(w, 0, g.m, w*panelsB/g.workers, (w+1)*panelsB/g.workers)
		}
	}
}

// macro multiplies rows [r0, r1) of the current A block by B panels
// [jp0, jp1), using worker w's buffers. r0 is a multiple of mr.
func (g *driver) macro(w, r0, r1, jp0, jp1 int) {
	if r0 >= r1 || jp0 >= jp1 {
		return
	}
	bufA := g.bufA[w]
	tile := g.tile[w][:]
	acc := !g.overwrite
	kc := g.kc
	for ic := r0; ic < r1; ic += mcBlock {
		mc := min(mcBlock, r1-ic)
		if g.transA {
			packAT(bufA, g.a, g.lda, ic, g.pc, mc, kc)
		} else {
			packAN(bufA, g.a, g.lda, ic, g.pc, mc, kc)
		}
		for jp := jp0; jp < jp1; jp++ {
			j := g.jc + jp*nr
			cols := min(nr, g.n-j)
			bp := g.bufB[jp*nr*kc : (jp+1)*nr*kc]
			for ip := 0; ip < mc; ip += mr {
				i := ic + ip
				rows := min(mr, mc-ip)
				ap := bufA[ip*kc : (ip+mr)*kc]
				if cols == nr {
					kernel(rows, kc, ap, bp, g.c[i*g.ldc+j:], g.ldc, acc)
					continue
				}
				kernel(rows, kc, ap, bp, tile, nr, false)
				for r := range rows {
					src := tile[r*nr : r*nr+cols]
					dst := g.c[(i+r)*g.ldc+j:][:cols]
					if acc {
						for x, v := range src {
							dst[x] += v
						}
					} else {
						copy(dst, src)
					}
				}
			}
		}
	}
}
