package gemm

import (
	"fmt"
	stdruntime "runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cnnc/cnnc/runtime"
)

// Blocking sized for the smallest caches cnnc runs on, the AMD Zen 3 cores
// of its anchors (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3); the Intel
// cores with AVX-512 it also runs on have more (48 KiB L1d, 2 MiB L2). See
// doc.go for the loop nest.
const (
	mr = 6  // rows of a micro-tile; must match codegen/asm.MR
	nr = 16 // columns of a micro-tile; must match codegen/asm.NR

	segsMax = 4 // the most runs packB16Segs gathers; codegen/asm.SegsMax

	dotRows, dotCols = 6, 4 // the tile of dotTile6x4; codegen/asm.DotRows, DotCols
)

// The cache blocking; variables only so that tests can shrink them to reach
// every loop.
var (
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
	SgemmEpi(pool, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, Epilogue{})
}

// SgemmEpi is SgemmPar followed by the epilogue ep on every element of C,
// applied by the micro-kernel while the tile is in registers, after the
// last block of k: a convolution's or linear layer's bias and ReLU cost no
// pass over C. It panics if a bias is shorter than C's side.
func SgemmEpi(pool *runtime.Pool, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, ep Epilogue) {
	checkEpilogue(m, n, ep)
	sgemm(pool, call{transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate, ep: ep})
}

// SgemmHandoff is SgemmEpi for a linear layer's forward product,
// C = A*Bᵀ (a batch of rows times a weight's transpose, not accumulated),
// that takes its A from, and hands its C to, the forward products before
// and after it ready packed: where it runs transposed (see trans.go), it
// takes A's panels from from where from holds A (the same slice, rows
// and columns), and it stores C's tiles into to as well as into C, as
// the next product, whose A is this C, packs it. That next product
// then does not pack its A: a pass over a batch of activations, half of
// them written by the other core, saved for each layer. Either Handoff
// may be nil; to holds nothing after a call that does not run transposed
// or has a RowBias. A Handoff is C's until that next call: whoever writes
// C in between must not pass it on.
func SgemmHandoff(pool *runtime.Pool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue, from, to *Handoff) {
	checkEpilogue(m, n, ep)
	sgemm(pool, call{transB: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, ep: ep, from: from, to: to})
}

// A Handoff holds a product's C, m rows of n floats, packed as a
// transposed product packs its A (packTrans): panels of 16 rows, each
// step of k (C's columns) 16 floats, rows past m zero. See SgemmHandoff.
type Handoff struct {
	panels []float32
	c      *float32 // &C[0] while panels holds C; nil when it holds nothing
	ldc    int
	m, n   int
}

// holds reports whether h holds the m x n matrix a, lda floats a row.
func (h *Handoff) holds(a []float32, lda, m, n int) bool {
	return h != nil && h.c != nil && len(a) > 0 && h.c == &a[0] && h.ldc == lda && h.m == m && h.n == n
}

// SgemmRows is SgemmPar for a weight gradient whose optimiser updates the
// weight by rows (see runtime.RowUpdate): it calls u.Done(r0, r1) for row
// ranges that cover [0, m) once each, as soon as those rows of C hold the
// whole product. Where the workers share the product by row panels (a
// weight gradient, whose k is a batch), each calls Done for its panels
// right after computing them, while they are in cache, and its kernels
// hint the panels' rows of u.Reads into L2 meanwhile; otherwise Done
// runs over the pool after the product. A nil u makes it SgemmPar.
func SgemmRows(pool *runtime.Pool, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, u *runtime.RowUpdate) {
	sgemm(pool, call{transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate, update: u})
}

// sgemm checks and runs a plain product, with its epilogue and row
// updates; one with too many rows to run transposed runs as a few
// transposed products where it could otherwise (see transRows).
func sgemm(pool *runtime.Pool, cl call) {
	checkArgs(cl.transA, cl.transB, cl.m, cl.n, cl.k, cl.a, cl.lda, cl.b, cl.ldb, cl.c, cl.ldc)
	m, n, c, ldc := cl.m, cl.n, cl.c, cl.ldc
	if cl.to != nil {
		cl.to.c = nil // until the product stores C into it (runTrans)
	}
	if m == 0 || n == 0 {
		return
	}
	if cl.k == 0 {
		if !cl.accumulate {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		cl.ep.apply(c, ldc, m, n, 0, 0)
		if cl.update != nil {
			cl.update.Done(0, m)
		}
		return
	}
	if rows := cl.transRows(); rows > 0 {
		for i := 0; i < m; i += rows {
			part := cl
			part.m = min(rows, m-i)
			part.a, part.c = cl.a[i*cl.lda:], c[i*ldc:]
			part.from, part.to = nil, nil
			if cl.ep.RowBias != nil {
				part.ep.RowBias = cl.ep.RowBias[i:]
			}
			launch(pool, part, nil)
		}
		return
	}
	launch(pool, cl, nil)
}

// launch runs cl on a driver from the free list, split over pool's workers
// (on the caller when pool is nil). With im, B is that im2col matrix: the
// driver keeps a copy, which cl.im then points to, and its offset tables.
func launch(pool *runtime.Pool, cl call, im *Im2col) {
	workers := 1
	if pool != nil {
		workers = pool.Workers()
	}
	g := getDriver(workers)
	g.call = cl
	wide := false
	if im != nil {
		g.imB = *im
		g.im, g.tab = &g.imB, tablesFor(&g.imB)
		wide = g.widen()
	}
	if g.transC {
		g.transposeC()
	}
	g.rowsDone = false
	g.run(pool, workers)
	if g.update != nil && !g.rowsDone {
		if workers > 1 {
			pool.For(g.m, g.update.Done)
		} else {
			g.update.Done(0, g.m)
		}
	}
	switch {
	case wide:
		g.narrow()
	case g.transC:
		g.untransposeC()
	}
	g.call, g.imB, g.tab, g.out, g.panelsB = call{}, Im2col{}, nil, wideOut{}, nil
	putDriver(g)
}

// checkEpilogue panics if a bias of ep is shorter than C's side, or ep
// has two activations.
func checkEpilogue(m, n int, ep Epilogue) {
	if ep.ReLU && ep.Tanh {
		panic("gemm: an epilogue with both ReLU and Tanh")
	}
	if ep.RowBias != nil && len(ep.RowBias) < m {
		panic(fmt.Sprintf("gemm: len(RowBias) = %d < m = %d", len(ep.RowBias), m))
	}
	if ep.ColBias != nil && len(ep.ColBias) < n {
		panic(fmt.Sprintf("gemm: len(ColBias) = %d < n = %d", len(ep.ColBias), n))
	}
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
	ap             []float32 // A packed by PackA, when a is nil
	b              []float32
	ldb            int
	c              []float32
	ldc            int
	accumulate     bool
	ep             Epilogue
	im             *Im2col // B, when not nil: see SgemmIm2col
	imT            bool    // B is im's transpose: see SgemmIm2colT
	imA            bool    // A is im and B is transposed: see SgemmIm2colBT
	imP            bool    // with imA, A is im's transpose: see SgemmIm2colPix
	// transC: the driver computes Cᵀ, stored transposed in the caller's
	// C, in a buffer of its own (SgemmIm2colBT without AVX-512).
	transC bool
	update *runtime.RowUpdate // see SgemmRows
	// from holds A already packed, and to takes C packed: see
	// SgemmHandoff.
	from, to *Handoff
	// panels: B (or with gemv, A) is a linear layer's weight stored as
	// column panels (see panels.go).
	panels bool
}

// A driver holds the packing buffers and the state of one call. The pool's
// For gets method values bound once in getDriver, so a call does not
// allocate.
//
// A call runs in one of two modes. In row mode, for each KC x NC block of B,
// the workers pack the block together and then share chunks of the row
// panels of C, each packing its own rows of A. In column mode, used when A
// is short (it then fits one MC block) or when splitting columns balances
// the work better (see byColumns), the workers share chunks of C's
// columns, each running the whole loop nest on a chunk alone, with NC
// small enough that its packed B block stays in L2: with few rows of A to
// share it, a B block larger than L2 would be written to L3 and read back
// for little reuse.
type driver struct {
	call
	chunks int  // the chunks of C's rows or columns the workers share
	byCols bool // column mode
	ncCols int  // NC in column mode
	// bInPlace: the AVX2 kernels read B's whole panels where B is stored
	// (column mode, B not transposed): see run.
	bInPlace bool
	// A transposed product's bias tables (see runTrans), read where its
	// epilogue has the bias.
	rowTab, colTab []float32
	// The trips of a tile's kernel calls, over which they spread the
	// next tile's hints (see ahead).
	trips int
	// rowsDone: row mode has handed every row to call.update.
	rowsDone bool
	// parts: the blocks of k a transposed product's tiles are split
	// into; partial holds the sums of all but the last.
	parts   int
	partial []float32
	// panelsB: a transposed product's A packed as its B panels, in
	// sharedB or a Handoff's; pack: the Handoff's panels its tiles store
	// C into, or nil.
	panelsB, pack []float32

	sharedB []float32 // row mode: the packed B block
	// sharedA is column mode's packed A, in PackA's layout, when the
	// workers would each pack it for every chunk (see shareA).
	sharedA []float32
	// edgeB holds the rows of a transposed B's last, partial panel while
	// it is packed; only one panel of a call is partial, so one buffer
	// serves every worker.
	edgeB []float32
	imB   Im2col        // an im2col call's B, which call.im points to
	tab   *im2colTables // and its offsets
	// A widened call's sample with room to read past its end, its
	// product, and the caller's C (see widen).
	wideX, wideC []float32
	out          wideOut
	w            []worker

	// Row mode: the block being multiplied.
	jc, nc, pc, kc int

	packAFn, packBFn, packTFn, foldFn, gemvFn, packPanelAFn        func(lo, hi int)
	rowsFn, colsFn, colsKFn, transFn, panelsDataFn, panelsWeightFn func(w, lo, hi int)
}

// A worker holds one worker's buffers.
type worker struct {
	bufA []float32 // packed A block: panels of kc x mr
	bufB []float32 // column mode: packed B block, panels of kc x nr
	tile [mr * nr]float32
	// tileT holds a transposed product's partial tile (see trans), while
	// tile holds its earlier blocks of k.
	tileT [mr * nr]float32
}

// drivers keeps idle drivers, with their buffers, for later calls: a few
// slots taken and returned with atomic swaps, where a mutex cost a few
// percent of a small model's training step. Calls run at once from as many
// goroutines as the pools have workers; a driver returned when every slot
// is full is left to the garbage collector.
var drivers [16]atomic.Pointer[driver]

// getDriver returns a driver with buffers for workers workers, reusing one
// from an earlier call when it can.
func getDriver(workers int) *driver {
	var g *driver
	for i := range drivers {
		if g = drivers[i].Swap(nil); g != nil {
			break
		}
	}
	if g == nil {
		g = &driver{}
		g.packAFn = g.packSharedA
		g.packBFn = g.packSharedB
		g.rowsFn = g.rows
		g.colsFn = g.cols
		g.colsKFn = g.colsK
		g.packTFn = g.packTrans
		g.transFn = g.trans
		g.foldFn = g.fold
		g.gemvFn = g.gemvRows
		g.packPanelAFn = g.packPanelA
		g.panelsDataFn = g.panelsData
		g.panelsWeightFn = g.panelsWeight
	}
	if len(g.w) < workers {
		// Room for every worker of the pool at once, so that the slice
		// grows once.
		g.w = append(g.w, make([]worker, max(workers, stdruntime.GOMAXPROCS(0))-len(g.w))...)
	}
	return g
}

func putDriver(g *driver) {
	for i := range drivers {
		if drivers[i].CompareAndSwap(nil, g) {
			return
		}
	}
}

// aligned returns a slice of n floats starting on a 64-byte boundary, reusing
// buf when it is long enough.
func aligned(buf []float32, n int) []float32 { return alignedCap(buf, n, n) }

// alignedCap is aligned that, when it must allocate, makes room for most
// floats, the largest the buffer will ever need. Drivers are shared by
// every call through a free list, so any driver may next serve the largest
// shape; growing each buffer once to its bound keeps the steady state free
// of allocations whatever the order of calls.
func alignedCap(buf []float32, n, most int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	most = max(most, n)
	raw := make([]float32, most+16)
	off := int(uintptr(unsafe.Pointer(&raw[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return raw[off : off+n : off+most]
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// l2Floats is how many floats of packed A and B a worker keeps in L2 in
// column mode: 384 KiB of the 512 KiB.
const l2Floats = 96 << 10

func (g *driver) run(pool *runtime.Pool, workers int) {
	if g.transposed() {
		g.runTrans(pool, workers)
		return
	}
	panelsA := ceilDiv(g.m, mr)
	panelsN := ceilDiv(g.n, nr)
	split := min(workers, max(panelsA, panelsN))
	kcMax := min(kcBlock, g.k)
	mcMax := min(mcBlock, panelsA*mr)
	g.byCols = g.byColumns(split)
	if split == 1 {
		workers = 1
	}
	// Buffers for every worker of the pool: ForWorker may give a chunk to
	// any of them.
	if g.ap == nil {
		for w := range workers {
			g.w[w].bufA = alignedCap(g.w[w].bufA, mcMax*kcMax, mcBlock*kcBlock)
		}
	}
	if g.transB && g.n%nr != 0 {
		g.edgeB = alignedCap(g.edgeB, nr*kcMax, nr*kcBlock)
	}
	// In column mode a packed B panel feeds only the few row panels of a
	// short A, which the AVX2 kernels can as well read from B where it
	// lies, where the product does not run transposed (C accumulated, or
	// k over transKMax): packing a weight read and wrote it once more.
	// Not where B's rows are a multiple of 256 bytes apart: their panels
	// then fall into a quarter or less of L1's sets and evict each other
	// (a 6x16 tile at ldb 512 runs at 41 GFLOP/s, at ldb 500 at 70).
	// Not with AVX-512 either: kernels that read a 6x64 tile's four
	// panels from B's rows, the last through the mask, made the MLP's
	// training step 12% slower than packing B on a Xeon with AVX-512
	// (medians of 100 interleaved blocks of 20 steps, the backward-data
	// products reading their weights in place), with or without
	// prefetching the rows ahead.
	g.bInPlace = g.byCols && !g.transB && g.im == nil && useAsm && !avx512() && g.ldb%64 != 0
	if g.byCols {
		g.ncCols = max(nr, (l2Floats-mcMax*kcMax)/kcMax/nr*nr)
		// Chunks as wide as the AVX-512 kernels' four panels where C has
		// the columns: narrower tiles load more per FMA.
		g.chunks = max(split, min(ceilDiv(panelsN, max(zPanels, 1)), chunksPerSplit*split))
		for w := range workers {
			g.w[w].bufB = alignedCap(g.w[w].bufB, min(g.ncCols, ceilDiv(panelsN, g.chunks)*nr)*kcMax, l2Floats)
		}
		g.shareA(pool, workers, panelsA)
		if workers > 1 && g.splitKZ() {
			g.parts = ceilDiv(g.k, kcBlock)
			g.partial = alignedCap(g.partial, (g.parts-1)*g.m*g.n, (g.parts-1)*g.m*g.n)
			pool.ForWorker(g.parts*g.chunks, g.colsKFn)
			pool.For(g.m, g.foldFn)
			return
		}
		if workers > 1 {
			pool.ForWorker(g.chunks, g.colsFn)
		} else {
			g.cols(0, 0, g.chunks)
		}
		return
	}

	// Where all of B, packed, stays in L2 (a weight gradient, whose k is
	// the batch), a chunk per row panel: the workers then finish within a
	// row panel of each other, where with four chunks each one could wait
	// for up to an eighth of the product. Otherwise each chunk reuses each
	// B panel over many rows, as the B block comes from L3.
	fine := workers > 1 && g.k <= kcBlock && g.n <= ncBlock && g.k*g.n <= l2Floats
	g.chunks = min(panelsA, chunksPerSplit*split)
	if fine {
		g.chunks = panelsA
	}
	g.sharedB = alignedCap(g.sharedB, min(ncBlock, panelsN*nr)*kcMax, ncBlock*kcBlock)
	for jc := 0; jc < g.n; jc += ncBlock {
		g.jc, g.nc = jc, min(ncBlock, g.n-jc)
		panelsB := ceilDiv(g.nc, nr)
		for pc := 0; pc < g.k; pc += kcBlock {
			g.pc, g.kc = pc, min(kcBlock, g.k-pc)
			if workers > 1 && panelsB > 1 && g.kc*g.nc >= 16384 {
				pool.For(panelsB, g.packBFn)
			} else {
				g.packSharedB(0, panelsB)
			}
			if fine {
				pool.ForWorkerEach(g.chunks, g.rowsFn)
			} else if workers > 1 {
				pool.ForWorker(g.chunks, g.rowsFn)
			} else {
				g.rows(0, 0, g.chunks)
			}
		}
	}
	g.rowsDone = true
}

// byColumns reports whether a product split among split workers runs in
// column mode: where A is short, and otherwise where splitting C's columns
// gives the busiest worker fewer tiles than splitting its rows (on a tie,
// rows, where no worker repeats another's packing of A). Not where the
// AVX-512 kernels read more than two blocks of A's rows where they lie:
// every column chunk walks all of A's rows, and beyond two blocks they no
// longer stay in L2 from one chunk to the next but come again from L3 for
// each, where a row split reads each row once. SGEMM 1024, whose 171 row
// panels split unevenly, so that the tile count favoured columns by 0.6%,
// ran at 294 GFLOP/s on a Xeon's two cores by columns and 350 by rows
// (medians of 40 interleaved runs); 1024x1024x64 at 285 and 304;
// 330x3000x300 at 246 and 264; while 150x2000x256, 210x2000x256 and
// 270x2000x512 ran faster by columns (299, 315, 299 against 229, 258, 269).
func (g *driver) byColumns(split int) bool {
	if g.m <= mcBlock {
		return true
	}
	if g.readsAInPlace() && g.m > 2*mcBlock {
		return false
	}
	panelsA, panelsN := ceilDiv(g.m, mr), ceilDiv(g.n, nr)
	rowTiles := ceilDiv(panelsA, split) * panelsN
	colTiles := panelsA * ceilDiv(panelsN, split)
	return colTiles < rowTiles
}

// readsAInPlace reports whether the micro-kernels read A where it is
// stored rather than packed: the AVX-512 kernels do, unless A was packed
// by PackA, comes from a sample (imA) or the product reads B from a sample
// directly (whose kernels take packed A): packing cost as much as a few of
// the tile rows it fed.
func (g *driver) readsAInPlace() bool {
	return g.ap == nil && avx512() && !g.direct() && !g.imA
}

// chunksPerSplit is how many chunks of C's rows or columns a product makes
// per worker, so that the pool can even out a worker that falls behind
// (see runtime.Pool.For). Each element of C is still computed by one chunk
// in the same order, so the bits do not depend on the split.
const chunksPerSplit = 4

// direct reports whether the micro-kernels read the panels of the call's
// im2col matrix from the sample, which then are not packed: with the
// assembly kernels (AVX-512 ones take up to four panels, AVX2 ones one),
// when every panel is whole (but a flat matrix's last) and X holds every
// float they read.
func (g *driver) direct() bool {
	return g.im != nil && !g.imT && !g.imA && useAsm && g.tab.direct && len(g.im.X) >= g.tab.end
}

// avx512 reports whether the AVX-512 kernels run: the CPU has them, the
// build has assembly and neither CNNC_AVX512=0 nor a test turned them off.
func avx512() bool { return zPanels > 0 && useAsm }

// shareA packs A once for a column-mode call whose chunks would each pack
// all of it, into sharedA in PackA's layout, which the chunks then read as
// a call's prepacked A: a product of 64 rows split into 8 chunks packed A
// as often as it packed B. It leaves A alone where the kernels read it
// unpacked, and for one chunk.
func (g *driver) shareA(pool *runtime.Pool, workers, panelsA int) {
	if g.ap != nil || g.imA || avx512() && !g.direct() || g.chunks == 1 {
		return
	}
	g.sharedA = alignedCap(g.sharedA, panelsA*mr*g.k, panelsA*mr*g.k)
	if workers > 1 {
		pool.For(panelsA, g.packAFn)
	} else {
		g.packSharedA(0, panelsA)
	}
	g.ap = g.sharedA
}

// packSharedA packs A's row panels [lo, hi) into sharedA, each block of
// k after the one before, as PackA lays them out.
func (g *driver) packSharedA(lo, hi int) {
	i0, rows := lo*mr, min(hi*mr, g.m)-lo*mr
	stride := ceilDiv(g.m, mr) * mr
	for pc := 0; pc < g.k; pc += kcBlock {
		kc := min(kcBlock, g.k-pc)
		dst := g.sharedA[pc*stride+i0*kc:]
		if g.transA {
			packAT(dst, g.a, g.lda, i0, pc, rows, kc)
		} else {
			packAN(dst, g.a, g.lda, i0, pc, rows, kc)
		}
	}
}

// packSharedB packs panels [lo, hi) of the current B block in row mode.
func (g *driver) packSharedB(lo, hi int) {
	g.packB(g.sharedB, g.jc, g.nc, g.pc, g.kc, lo, hi)
}

// rows runs chunks [lo, hi) of the row panels of the current block in row
// mode on worker w.
func (g *driver) rows(w, lo, hi int) {
	panelsA := ceilDiv(g.m, mr)
	panelsB := ceilDiv(g.nc, nr)
	last := g.lastBlock()
	for c := lo; c < hi; c++ {
		r0 := c * panelsA / g.chunks * mr
		r1 := min((c+1)*panelsA/g.chunks*mr, g.m)
		g.macro(&g.w[w], g.sharedB, g.jc, g.nc, g.pc, g.kc, r0, r1, 0, panelsB)
		if last && g.update != nil {
			// The rows hold the whole product: the last block of B.
			g.update.Done(r0, r1)
		}
	}
}

// rowHint returns the hint that spreads trips hints over rows [i, i+rows)
// of x, laid out as C: a cache line a trip from the first row's start, or
// where the trips outnumber the lines, closer together to the last row's
// end. None where x is too short.
func (g *driver) rowHint(x []float32, i, rows, trips int) hint {
	start, span := i*g.ldc, (rows-1)*g.ldc+g.n
	if trips < 1 || len(x) < start+span {
		return hint{}
	}
	stride := nr
	if trips > 1 {
		stride = min(nr, max(1, (span-1)/(trips-1)))
	}
	return hint{at: uintptr(unsafe.Pointer(&x[start])), stride: stride}
}

// updateHint returns the hint of call c of the calls of AVX-512 kernels,
// a hint a step of k, that multiply the last block of rows [i, i+rows)
// of a product whose rows then go to an update: each of the update's
// operands gets a run of the calls, which hint its rows a line apart (or
// closer, where the rows have fewer lines than a call hints), each call
// from where the one before stopped and the last ending at the rows'
// last float. The update right after then finds its operands in L2, where
// it read the momentum from L3 or memory: with the hints, the MLP's
// training step took 2% less time on a Xeon with AVX-512 (5,193 us
// against 5,315, medians of 100 interleaved blocks of 20 steps).
func (g *driver) updateHint(i, rows, kc, c, calls int) hint {
	reads := g.update.Reads
	n := len(reads)
	if n == 0 {
		return hint{}
	}
	o := c * n / calls
	c0 := ceilDiv(o*calls, n)       // the operand's first call
	per := kc / hintTrip * hintTrip // the main loop's steps
	h := g.rowHint(reads[o], i, rows, per)
	if h.at == 0 {
		return h // no steps, or an operand too short
	}
	span := (rows-1)*g.ldc + g.n
	h.at += uintptr(4 * min((c-c0)*per*h.stride, span-1-(per-1)*h.stride))
	return h
}

// lastBlock reports whether row mode's current block of B is the last, after
// which C's rows are done.
func (g *driver) lastBlock() bool { return g.jc+g.nc == g.n && g.pc+g.kc == g.k }

// cols runs chunks [lo, hi) of C's columns in column mode on worker w.
func (g *driver) cols(w, lo, hi int) {
	panelsN := ceilDiv(g.n, nr)
	wk := &g.w[w]
	for c := lo; c < hi; c++ {
		c0 := c * panelsN / g.chunks * nr
		c1 := min((c+1)*panelsN/g.chunks*nr, g.n)
		for jc := c0; jc < c1; jc += g.ncCols {
			nc := min(g.ncCols, c1-jc)
			panelsB := ceilDiv(nc, nr)
			for pc := 0; pc < g.k; pc += kcBlock {
				kc := min(kcBlock, g.k-pc)
				packed := 0
				if g.bInPlace {
					packed = nc / nr // a last, partial panel is packed
				}
				g.packB(wk.bufB, jc, nc, pc, kc, packed, panelsB)
				g.macro(wk, wk.bufB, jc, nc, pc, kc, 0, g.m, 0, panelsB)
			}
		}
	}
}

// aAt returns where in a the kernels that read A in place find row i of
// op(A) at step pc of k.
func (g *driver) aAt(i, pc int) int {
	if g.transA {
		return pc*g.lda + i
	}
	return i*g.lda + pc
}

// splitKZ reports whether the workers of a column-mode product share its
// blocks of k as well as its columns, as a transposed product's do with
// AVX2 (see splitK): with the AVX-512 kernels, A read in place, C not
// accumulated. That is a linear layer's backward-data, dX = dY*W, whose k
// runs over W's rows: split by columns alone, each worker read every row
// of W, half of them last written by the other worker's update, which
// then writes them again. On a Xeon with AVX-512, where the two cores
// share L3, the MLP's training step took 5,331 us instead of 5,688
// (medians of 100 interleaved blocks of 20 steps), the weight gradients
// with their updates 2,127-2,260 us instead of 2,532-2,597.
func (g *driver) splitKZ() bool {
	return avx512() && g.splitK() && !g.accumulate && g.ap == nil && g.im == nil && g.update == nil
}

// colsK runs chunks [lo, hi) of a column-mode product split over its blocks
// of k (splitKZ) on worker w: chunk c is C's column chunk c%chunks over
// block c/chunks, whose sums go to C for the last block and to partial
// for the others, for fold to add up.
func (g *driver) colsK(w, lo, hi int) {
	panelsN := ceilDiv(g.n, nr)
	wk := &g.w[w]
	for c := lo; c < hi; c++ {
		part, cc := c/g.chunks, c%g.chunks
		c0 := cc * panelsN / g.chunks * nr
		c1 := min((cc+1)*panelsN/g.chunks*nr, g.n)
		pc := part * kcBlock
		kc := min(kcBlock, g.k-pc)
		dst, ld := g.c, g.ldc
		if part < g.parts-1 {
			dst, ld = g.partial[part*g.m*g.n:], g.n
		}
		for jc := c0; jc < c1; jc += g.ncCols {
			nc := min(g.ncCols, c1-jc)
			panelsB := ceilDiv(nc, nr)
			g.packB(wk.bufB, jc, nc, pc, kc, 0, panelsB)
			for jp := 0; jp < panelsB; jp += zPanels {
				q := min(zPanels, panelsB-jp)
				j := jc + jp*nr
				bp := wk.bufB[jp*nr*kc : (jp+q)*nr*kc]
				for i := 0; i < g.m; i += mr {
					kernelZA(q, min(mr, g.m-i), kc, g.a[g.aAt(i, pc):], g.lda, g.transA, bp, dst[i*ld+j:], ld, min(q*nr, jc+nc-j), false, nil, i, j, hint{})
				}
			}
		}
	}
}

// packB packs panels [lo, hi) of the B block at rows [pc, pc+kc) and columns
// [jc, jc+nc) into dst.
func (g *driver) packB(dst []float32, jc, nc, pc, kc, lo, hi int) {
	if g.imT {
		g.packBIm2colT(dst, jc, nc, pc, kc, lo, hi)
		return
	}
	if g.im != nil && !g.imA {
		g.packBIm2col(dst, jc, nc, pc, kc, lo, hi)
		return
	}
	if !g.transB && useAsm {
		// Full panels row by row in one call, so that B streams in.
		full := min(hi, nc/nr)
		if full > lo {
			base := pc*g.ldb + jc + lo*nr
			_ = g.b[base+(kc-1)*g.ldb+(full-lo)*nr-1] // what packB16N reads
			d := dst[lo*nr*kc : full*nr*kc]
			packB16N(kc, full-lo, &g.b[base], g.ldb, &d[0])
			lo = full
		}
	}
	for jp := lo; jp < hi; jp++ {
		j := jp * nr
		cols := min(nr, nc-j)
		d := dst[jp*nr*kc : (jp+1)*nr*kc]
		if g.transB {
			packBT(d, g.b, g.ldb, pc, jc+j, kc, cols, g.edgeB)
		} else {
			packBN(d, g.b, g.ldb, pc, jc+j, kc, cols)
		}
	}
}

// macro multiplies rows [r0, r1) of A, columns [pc, pc+kc), by panels
// [jp0, jp1) of the packed B block bufB (columns [jc, jc+nc) of B), packing
// A into wk's buffer MC rows at a time. r0 is a multiple of mr.
func (g *driver) macro(wk *worker, bufB []float32, jc, nc, pc, kc, r0, r1, jp0, jp1 int) {
	if r0 >= r1 || jp0 >= jp1 {
		return
	}
	tile := wk.tile[:]
	acc := pc > 0 || g.accumulate
	direct := g.direct()
	unpackedA := g.readsAInPlace()
	// The epilogue runs once C holds the whole product: after the last
	// block of k.
	var ep *Epilogue
	if pc+kc == g.k && !g.ep.none() {
		ep = &g.ep
	}
	for ic := r0; ic < r1; ic += mcBlock {
		mc := min(mcBlock, r1-ic)
		bufA := wk.bufA
		switch {
		case g.ap != nil:
			// Packed by PackA: the rows' panels of this block of k.
			bufA = g.ap[pc*ceilDiv(g.m, mr)*mr+ic*kc:]
		case unpackedA, g.imA:
			// The kernels read A where it lies, or from the sample.
		case g.transA:
			packAT(bufA, g.a, g.lda, ic, pc, mc, kc)
		default:
			packAN(bufA, g.a, g.lda, ic, pc, mc, kc)
		}
		// A row panel (row mode) whose rows go to the update once this
		// call, the last block of B, is done.
		updating := mc <= mr && g.update != nil && !g.byCols && jc+nc == g.n && pc+kc == g.k
		first := jp0
		if whole := min(jp1, nc/nr) - jp0; whole > 0 && mc <= mr && g.runs(ep, direct) {
			// One row panel (a chunk of a weight gradient): its whole
			// tiles in one call, or where the rows go to an update as
			// they are done, in a call for each of its operands, which
			// the call hints into L2.
			reads := 0
			if updating {
				reads = min(len(g.update.Reads), whole)
			}
			calls := max(reads, 1)
			for q := range calls {
				p0, p1 := jp0+q*whole/calls, jp0+(q+1)*whole/calls
				var h hint
				if reads > 0 {
					h = g.rowHint(g.update.Reads[q], ic, mc, (p1-p0)*(kc/hintTrip))
				}
				kernel(mc, kc, p1-p0, bufA[:mr*kc], bufB[p0*nr*kc:], g.c[ic*g.ldc+jc+p0*nr:], g.ldc, acc, h)
			}
			first += whole
		}
		// The AVX-512 kernels that read A in place and multiply a row
		// panel whose rows then go to an update hint its operands into L2
		// (see updateHint), over zCalls calls.
		zCalls := 0
		if unpackedA && updating {
			zCalls = ceilDiv(jp1-first, zPanels)
		}
		for jp := first; jp < jp1; jp++ {
			j := jc + jp*nr
			cols := min(nr, jc+nc-j)
			if direct && !avx512() {
				// A whole panel of an im2col matrix, read from the sample;
				// a last, partial one through the tile.
				x, koffs, poff := g.im.X[:g.tab.end], g.tab.kOff[pc:pc+kc], g.tab.pOff[jc/nr+jp:][:1]
				for ip := 0; ip < mc; ip += mr {
					i := ic + ip
					rows := min(mr, mc-ip)
					ap := bufA[ip*kc : (ip+mr)*kc]
					g.tileProduct(tile, rows, cols, i, j, acc, ep, func(c []float32, ldc int, acc bool, ep *Epilogue) {
						kernelD(rows, kc, ap, x, koffs, poff, c, ldc, acc, ep, i, j)
					})
				}
				continue
			}
			if direct {
				// Whole panels of an im2col matrix, read from the sample.
				q, q0 := min(zPanels, jp1-jp), jc/nr+jp
				w := min(q*nr, jc+nc-j)
				x := g.im.X[:g.tab.end]
				for ip := 0; ip < mc; ip += mr {
					i := ic + ip
					kernelZD(q, min(mr, mc-ip), kc, bufA[ip*kc:(ip+mr)*kc], x, g.tab.kOff[pc:pc+kc], g.tab.pOff[q0:q0+q], g.c[i*g.ldc+j:], g.ldc, w, acc, ep, i, j)
				}
				jp += q - 1
				continue
			}
			if avx512() {
				// AVX-512: up to zPanels panels at a time, the last of C's
				// columns masked.
				q := min(zPanels, jp1-jp)
				w := min(q*nr, jc+nc-j)
				bp := bufB[jp*nr*kc : (jp+q)*nr*kc]
				for ip := 0; ip < mc; ip += mr {
					i := ic + ip
					if g.imA {
						x := g.im.X[:g.im.C*g.im.H*g.im.W]
						rowOffs, stepOffs := g.imOffsets(i, pc, kc)
						kernelZI(q, min(mr, mc-ip), kc, x, rowOffs, stepOffs, bp, g.c[i*g.ldc+j:], g.ldc, w, acc, ep, i, j)
						continue
					}
					if unpackedA {
						var h hint
						if zCalls > 0 {
							h = g.updateHint(ic, mc, kc, (jp-first)/zPanels, zCalls)
						}
						kernelZA(q, min(mr, mc-ip), kc, g.a[g.aAt(i, pc):], g.lda, g.transA, bp, g.c[i*g.ldc+j:], g.ldc, w, acc, ep, i, j, h)
						continue
					}
					kernelZ(q, min(mr, mc-ip), kc, bufA[ip*kc:(ip+mr)*kc], bp, g.c[i*g.ldc+j:], g.ldc, w, acc, ep, i, j)
				}
				jp += q - 1
				continue
			}
			if g.bInPlace && cols == nr {
				// A whole panel, read where B lies.
				b := g.b[pc*g.ldb+j:]
				for ip := 0; ip < mc; ip += mr {
					i := ic + ip
					kernelB(min(mr, mc-ip), kc, bufA[ip*kc:(ip+mr)*kc], b, g.ldb, g.c[i*g.ldc+j:], g.ldc, acc, ep, i, j)
				}
				continue
			}
			bp := bufB[jp*nr*kc : (jp+1)*nr*kc]
			for ip := 0; ip < mc; ip += mr {
				i := ic + ip
				rows := min(mr, mc-ip)
				if g.imA {
					// AVX2: A's rows read from the sample.
					x := g.im.X[:g.im.C*g.im.H*g.im.W]
					rowOffs, stepOffs := g.imOffsets(i, pc, kc)
					g.tileProduct(tile, rows, cols, i, j, acc, ep, func(c []float32, ldc int, acc bool, ep *Epilogue) {
						kernelI(rows, kc, x, rowOffs, stepOffs, bp, c, ldc, acc, ep, i, j)
					})
					continue
				}
				ap := bufA[ip*kc : (ip+mr)*kc]
				if cols == nr {
					if ep != nil {
						kernelEpi(rows, kc, ap, bp, g.c[i*g.ldc+j:], g.ldc, acc, ep, i, j)
					} else {
						kernel(rows, kc, 1, ap, bp, g.c[i*g.ldc+j:], g.ldc, acc, hint{})
					}
					continue
				}
				kernel(rows, kc, 1, ap, bp, tile, nr, false, hint{})
				g.storeTile(tile, rows, cols, i, j, acc, ep)
			}
		}
	}
}

// imOffsets returns, for a call whose A the kernels read from the sample
// (imA), where A's rows from row i start in the sample and how far its
// steps [pc, pc+kc) of k lie from a row's start: an im2col row's taps and
// its output pixels, or with imP an output pixel's and its taps.
func (g *driver) imOffsets(i, pc, kc int) (rows, steps []int32) {
	if g.imP {
		return g.tab.pix[i:], g.tab.kOff[pc : pc+kc]
	}
	return g.tab.kOff[i:], g.tab.pix[pc : pc+kc]
}

// runs reports whether macro's plain path multiplies a row panel by
// its block's whole B panels with one kernel call (see kernel): packed
// panels, no epilogue, the AVX2 or Go kernels.
func (g *driver) runs(ep *Epilogue, direct bool) bool {
	return ep == nil && !direct && !avx512() && !g.imA && !g.bInPlace
}

// tileProduct runs kernel, a micro-kernel call with the epilogue for the
// rows x 16 tile of C at row i, column j: into C where the panel is whole,
// and for a partial panel (cols < 16) into tile, which storeTile then
// stores.
func (g *driver) tileProduct(tile []float32, rows, cols, i, j int, acc bool, ep *Epilogue, kernel func(c []float32, ldc int, acc bool, ep *Epilogue)) {
	if cols == nr {
		kernel(g.c[i*g.ldc+j:], g.ldc, acc, ep)
		return
	}
	kernel(tile, nr, false, nil)
	g.storeTile(tile, rows, cols, i, j, acc, ep)
}

// storeTile stores (adds, with acc) the first cols columns of the rows x
// 16 tile, the product of a partial panel, into C at row i, column j, and
// runs the epilogue ep on them where it is not nil.
func (g *driver) storeTile(tile []float32, rows, cols, i, j int, acc bool, ep *Epilogue) {
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
	if ep != nil {
		ep.apply(g.c[i*g.ldc+j:], g.ldc, rows, cols, i, j)
	}
}
