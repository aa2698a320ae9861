package gemm

import (
	"unsafe"

	"github.com/cnnc/cnnc/runtime"
)

// A linear layer's forward product, Y = X*Wᵀ + bias with X a batch of a
// few dozen rows, would pack all of W for a few row tiles of X: W is read
// and written once more, a megabyte a layer for the MLP. The AVX2 driver
// computes such a product as its transpose instead, Yᵀ = W*Xᵀ: the
// kernels read W's rows where they lie (A in place), take X packed as the
// B panels (a batch of rows: small), and store each tile transposed into
// Y (ntsgemm). The backward-data product dX = dY*W likewise runs as
// dXᵀ = Wᵀ*dYᵀ, reading W's columns in place (ttsgemm). The bias of Y's
// columns becomes the bias of the tile's rows. The blocks of k are those
// of the packed path, each block's sum added to the earlier ones' in the
// same order, so the bits are the same either way. A larger batch runs as
// a few such products (see transRows).
//
// The weight comes from L3 or memory (each of the two products reads it
// once a training step), and a tile's rows or columns are short streams
// that the hardware prefetchers pick up only after the first misses of
// each. So while a worker multiplies one tile, its kernels hint the next
// tile's part of the weight into L2, one address every 4 steps of k (see
// ahead). In the MLP's training step (10 layers of 500x500, batch 64)
// the forward products then took 9% less time, the backward-data ones
// 13% and the whole step 5%.
//
// Even so, the backward-data kernels lose about a sixth of their speed
// to reading W's columns in place (BenchmarkKernelColumns: 94 GFLOP/s on
// a Xeon core against 110-113 on a packed strip), which a weight stored
// as column panels avoids (see panels.go). Packing W once a step
// in the forward product instead, each tile copying its 6 rows of W
// (in L1 then) into the backward-data's B panels, which then ran as a
// packed product split by columns, cost more than it saved: in the MLP's
// step on a Xeon's two cores with AVX2 (3 alternated runs of 2,000
// steps), the backward-data products took 1,607-1,626 us a step against
// 1,771-1,794 and the weight gradients with their updates 2,045-2,067
// against 2,145-2,172, but the forward products 2,183-2,216 against
// 1,785-1,796, the copies writing a megabyte a layer: the step
// 6,011-6,069 us against 5,863-5,939.
//
// Packing X, a batch of activations whose other half the other core's
// tiles of the layer before wrote, took a forward product some 8 us on
// two cores in the MLP's step, as long as a few of its tiles. Through
// SgemmHandoff the layer before stores its tiles, finished, into the
// next product's B panels as well (its kernels' pack), in registers then,
// and the next product reads them instead of packing X: two handoffs
// that the layers take in turn, so that both stay in L2. The MLP's
// training on a Xeon's two cores with AVX2 then ran 1.4% more images a
// second (median of 12 alternated pairs of runs of the training
// benchmark, from 1.3% fewer to 4.1% more), with the same bits; with a
// handoff for each layer, which then came from L3, no more than without.
//
// The AVX-512 kernels have no transposed store. Computed as its transpose
// into a buffer by them (W read in place, X packed), the MLP's forward
// product took 112-120 us a layer on a Xeon's two cores against 126-132
// packing W, but turning the buffer around into Y took another 23-31.

// transKMax is the longest k a transposed product takes: its B panels,
// all of k, 16 floats a step, stay in L2 (64 KiB each).
const transKMax = 1024

// transposed reports whether the call runs as its transpose (see above):
// AVX2, C = A*op(B) not accumulated, A short enough for column mode and k
// short enough that its panels stay in L2. Not where the kernels would
// read B's columns from rows a multiple of 256 bytes apart, which fall
// into a quarter or less of L1's sets (see bInPlace in run).
func (g *driver) transposed() bool {
	return g.transposable() && (g.m <= mcBlock || g.panels)
}

// transposable reports whether the call could run as its transpose but
// for A's rows (see transposed).
func (cl *call) transposable() bool {
	return useAsm && !avx512() && !cl.transA && !cl.accumulate && cl.im == nil && cl.ap == nil &&
		cl.k <= transKMax && (cl.transB || cl.ldb%64 != 0)
}

// transRows returns how many of A's rows each of a few transposed
// products takes, whole panels of 16 and no more than mcBlock, where a
// call that could run transposed has more rows than that: a linear
// layer's forward product at an inference batch of 256. Each product
// reads B in place again, each worker its own rows of it, where the
// packed path packs all of B with both workers and each then reads the
// other's half: for the MLP's batch of 256 on two workers, 0.99-1.38 times
// the images a second (median 1.14 over 10 alternated runs), 0.92-1.05 on
// one. It returns 0 where the call runs as one product, where the
// product hands its rows to an update, and where mcBlock is less than a
// panel (tests shrink it).
func (cl *call) transRows() int {
	if cl.m <= mcBlock || mcBlock < nr || cl.update != nil || !cl.transposable() {
		return 0
	}
	parts := ceilDiv(cl.m, mcBlock/nr*nr)
	return ceilDiv(ceilDiv(cl.m, parts), nr) * nr
}

// Sizes of the bias tables of a transposed product: per tile of 6 rows of
// Cᵀ and per panel of 16 of its columns, in the layouts ntsgemm reads.
const (
	transRowTab = 16
	transColTab = 96
)

// runTrans computes Cᵀ = B*Aᵀ: it packs A's rows as B panels, lays out
// the biases, and shares the tiles of B's rows among the workers, with
// splitK each tile once per block of k.
func (g *driver) runTrans(pool *runtime.Pool, workers int) {
	panels := ceilDiv(g.m, nr)
	tiles := ceilDiv(g.n, mr)
	g.sharedB = alignedCap(g.sharedB, panels*nr*g.k, ncBlock*kcBlock)
	if g.m%nr != 0 {
		g.edgeB = alignedCap(g.edgeB, nr*g.k, nr*transKMax)
	}
	g.trips = tileTrips(g.m, g.k)
	if g.ep.ColBias != nil {
		g.rowTab = alignedCap(g.rowTab, tiles*transRowTab, tiles*transRowTab)
		transRowBias(g.rowTab, g.ep.ColBias[:g.n])
	}
	if g.ep.RowBias != nil {
		g.colTab = alignedCap(g.colTab, panels*transColTab, panels*transColTab)
		transColBias(g.colTab, g.ep.RowBias[:g.m])
	}
	switch {
	case g.from.holds(g.a, g.lda, g.m, g.k):
		g.panelsB = g.from.panels
	case workers > 1 && panels > 1:
		g.panelsB = g.sharedB
		pool.For(panels, g.packTFn)
	default:
		g.panelsB = g.sharedB
		g.packTrans(0, panels)
	}
	// The tiles store C packed where the product hands it on and its
	// kernels can: without a bias on C's rows.
	var to *Handoff
	if g.to != nil && g.ep.RowBias == nil {
		to = g.to
		to.panels = alignedCap(to.panels, panels*nr*g.n, panels*nr*g.n)
		g.pack = to.panels
	}
	g.parts = 1
	if workers > 1 && g.splitK() {
		g.parts = ceilDiv(g.k, kcBlock)
		g.partial = alignedCap(g.partial, (g.parts-1)*g.m*g.n, (g.parts-1)*g.m*g.n)
	}
	if workers > 1 && g.parts*tiles > 1 {
		// A tile is microseconds of work: one chunk each, so that the
		// workers finish within a tile of each other.
		pool.ForWorkerEach(g.parts*tiles, g.transFn)
	} else {
		g.trans(0, 0, tiles)
	}
	if g.parts > 1 {
		pool.For(g.m, g.foldFn)
	}
	if to != nil {
		if cols := g.m % nr; cols != 0 {
			// The last panel's rows past m hold what the kernels made of
			// its zeros: zeros again, as packTrans leaves them.
			last := to.panels[(panels-1)*nr*g.n:]
			for j := range g.n {
				clear(last[j*nr+cols : (j+1)*nr])
			}
		}
		to.c, to.ldc, to.m, to.n = &g.c[0], g.ldc, g.m, g.n
		g.pack = nil
	}
}

// fold adds up rows [lo, hi) of the sums of a product split over its
// blocks of k (see splitK): the earlier blocks' sums in their order, then
// those into C, which holds the last block's, giving each element the bits
// of the blocks run one after another in a tile.
func (g *driver) fold(lo, hi int) {
	size := g.m * g.n
	for r := lo; r < hi; r++ {
		t := g.partial[r*g.n : (r+1)*g.n]
		for b := 1; b < g.parts-1; b++ {
			Axpy(1, g.partial[b*size+r*g.n:][:g.n], t)
		}
		Axpy(1, t, g.c[r*g.ldc:][:g.n])
	}
}

// splitK reports whether the workers of a transposed product share its
// blocks of k as well as its tiles: where the kernels read B's columns
// (B not transposed), k has more than one block and there is no
// epilogue, which would have to wait for the last block. That product is
// a linear layer's backward-data, dX = dY*W, whose k runs over W's rows.
// The other products of a training step share W's rows among the
// workers, each worker keeping to its own: the forward product's tiles,
// the weight gradient's row panels, the optimiser's update. Split only
// by tiles, W's columns, each worker would read every row, half of them
// last written by the other worker, which then writes them again in the
// update. Where the machine puts the two threads on cores that share no
// L3, that traffic crosses between the caches: in the MLP's training
// step, measured per phase in such periods, the updates took twice as
// long as where the cores share one. Split by blocks, each worker reads
// its own rows (with two workers, the first block and the second), and
// the blocks' sums, one product-sized buffer each but the last, are
// added up after (fold). In the MLP's step, with the updates by rows
// (SgemmRows), the weight gradients and their updates then took 3,036 us
// instead of 3,691 and the step 8,087 instead of 8,511 where the cores
// share no L3, the step 6,681 instead of 6,624 where they share one
// (medians of 62 and 102 blocks of 20 steps, interleaved).
func (g *driver) splitK() bool {
	return !g.transB && g.k > kcBlock && g.ep.none()
}

// packTrans packs panels [lo, hi) of A's rows, all of k, as B panels.
func (g *driver) packTrans(lo, hi int) {
	for q := lo; q < hi; q++ {
		d := g.sharedB[q*nr*g.k : (q+1)*nr*g.k]
		packBT(d, g.a, g.lda, 0, q*nr, g.k, min(nr, g.m-q*nr), g.edgeB)
	}
}

// trans runs chunks [lo, hi) of a transposed product on worker w: the
// tiles of B's rows, each against every panel of A's rows, stored
// transposed into C; with parts blocks of k (splitK), chunk c is tile
// c%tiles over block c/tiles, all but the last block's sums going to
// partial.
func (g *driver) trans(w, lo, hi int) {
	flags := 0
	switch {
	case g.ep.ReLU:
		flags = epiReLU
	case g.ep.Tanh:
		flags = epiTanh
	}
	wk := &g.w[w]
	tiles := ceilDiv(g.n, mr)
	for c := lo; c < hi; c++ {
		t, part := c%tiles, c/tiles
		if g.parts == 1 {
			g.tileTrans(wk, t, 0, g.k, g.c, g.ldc, flags)
			continue
		}
		pc := part * kcBlock
		dst, ld := g.c, g.ldc
		if part < g.parts-1 {
			dst, ld = g.partial[part*g.m*g.n:], g.n
		}
		g.tileTrans(wk, t, pc, min(pc+kcBlock, g.k), dst, ld, flags)
	}
}

// tileTrans runs tile t of B's rows over steps [k0, k1) of k against every
// panel of A's rows and stores it transposed into dst, ld floats a row.
func (g *driver) tileTrans(wk *worker, t, k0, k1 int, dst []float32, ld, flags int) {
	if g.panels {
		g.tilePanels(wk, t, dst, ld, flags)
		return
	}
	// The kernels' A is B, read in place: its rows, or with B not
	// transposed its columns, kStep floats apart from one step to the next.
	transA, kStep, rowStep := !g.transB, 1, g.ldb
	if transA {
		kStep, rowStep = g.ldb, 1
	}
	i := t * mr
	rows := min(mr, g.n-i)
	a := g.b[k0*kStep+i*rowStep:]
	// The worker's next tile is most often t+1: its A is fetched
	// while this one is multiplied.
	trips := g.trips
	if k1-k0 != g.k {
		trips = tileTrips(g.m, k1-k0)
	}
	next := newAhead(g.b[k0*kStep:], g.ldb, k1-k0, g.n, t+1, transA, trips)
	kc := k1 - k0
	for q := 0; q*nr < g.m; q++ {
		bp := g.panelsB[q*nr*g.k+k0*nr : (q+1)*nr*g.k]
		// The blocks of k before the last into the worker's tile,
		// untransposed, which the last one adds.
		var prev []float32
		last := (kc - 1) / kcBlock * kcBlock
		for pc := 0; pc < last; pc += kcBlock {
			kernelN(transA, rows, kcBlock, a[pc*kStep:], g.ldb, bp[pc*nr:], wk.tile[:], nr, pc > 0, &next)
			prev = wk.tile[:]
		}
		g.storeTrans(wk, transA, t, q, kc-last, a[last*kStep:], g.ldb, bp[last*nr:], dst, ld, prev, flags, &next)
	}
}

// storeTrans runs tile t's last block of k, kc steps of A (lda as
// kernelT takes it) against panel q's B panel bp, adds prev (the earlier
// blocks' sum) and stores the tile transposed into dst, ld floats a row,
// with the epilogue's biases and flags, and into the handoff where there
// is one. A partial panel goes through the worker's other tile.
func (g *driver) storeTrans(wk *worker, transA bool, t, q, kc int, a []float32, lda int, bp, dst []float32, ld int, prev []float32, flags int, h *ahead) {
	i, s := t*mr, q*nr
	rows, cols := min(mr, g.n-i), min(nr, g.m-s)
	var rowTab, colTab, pack []float32
	if g.ep.ColBias != nil {
		rowTab = g.rowTab[t*transRowTab:]
	}
	if g.ep.RowBias != nil {
		colTab = g.colTab[q*transColTab:]
	}
	if g.pack != nil {
		pack = g.pack[s*g.n+i*nr:]
	}
	if cols == nr {
		kernelT(transA, rows, kc, a, lda, bp, dst[s*ld+i:], ld, prev, rowTab, colTab, pack, flags, h)
		return
	}
	// The transposed tile, 16 rows of mr floats.
	kernelT(transA, rows, kc, a, lda, bp, wk.tileT[:], mr, prev, rowTab, colTab, pack, flags, h)
	for j := range cols {
		copy(dst[(s+j)*ld+i:][:rows], wk.tileT[j*mr:])
	}
}

// panelKc is the block of k in which tilePanels' kernels read the whole
// panels: the MLP's 500 then runs as one block and its 784 as two. In
// blocks of kcBlock, a tile's three kernel calls for each panel of B
// (where the row-major weight's take two) made the MLP's forward
// products 3% slower than on the row-major weights
// (BenchmarkLinearLayers); in one block of all of k, no faster than in
// blocks of 512.
const panelKc = 512

// tilePanels is tileTrans for B a weight stored as column panels, all of
// k: its kernels read tile t's rows of each panel in turn (psgemm), in
// blocks of panelKc steps of the whole panels, and the last panel,
// narrower where k is not a multiple of 16, rows as long apart, with the
// transposed store. They fetch the panels ahead themselves, without
// hints.
func (g *driver) tilePanels(wk *worker, t int, dst []float32, ld, flags int) {
	const pw = runtime.PanelWidth
	i := t * mr
	rows := min(mr, g.n-i)
	full := (g.k - 1) / pw * pw // the steps in the panels before the last
	lastW := g.k - full
	none := ahead{base: uintptr(unsafe.Pointer(&g.b[0]))}
	aLast := g.b[full*g.n+i*lastW:]
	for q := 0; q*nr < g.m; q++ {
		bp := g.panelsB[q*nr*g.k : (q+1)*nr*g.k]
		var prev []float32
		for pc := 0; pc < full; pc += panelKc {
			kernelP(rows, min(panelKc, full-pc), g.b[pc*g.n+i*pw:], pw*g.n, bp[pc*nr:], wk.tile[:], nr, pc > 0)
			prev = wk.tile[:]
		}
		g.storeTrans(wk, false, t, q, lastW, aLast, lastW, bp[full*nr:], dst, ld, prev, flags, &none)
	}
}

// hintTrip is how many steps of k the kernels that read A in place take
// per hint: one trip of their main loop (codegen/asm's Unroll).
const hintTrip = 4

// tileTrips returns the trips of the main loop that a tile's kernel calls
// make in a transposed product, for C's m rows and k: a call per panel of
// 16 rows and block of k, kc/hintTrip trips a call.
func tileTrips(m, k int) int {
	trips := 0
	for pc := 0; pc < k; pc += kcBlock {
		trips += min(kcBlock, k-pc) / hintTrip
	}
	return trips * ceilDiv(m, nr)
}

// An ahead plans the hints that a tile's kernel calls give for the next
// tile's A, B's rows or columns read in place: count addresses, stride
// floats apart from b[first] on, handed to the calls in turn, kc/4 to a
// call of kc steps. A call whose share would run past the last address
// takes the last kc/4 instead, and once all are given the calls repeat
// the last, so the hints stay within the tile wherever the plan fits in
// its calls.
type ahead struct {
	base          uintptr // &b[0]
	first, stride int
	count         int
	next          int // the index of the next address to hand out
}

// newAhead returns the hints for tile t >= 1 of a transposed product
// whose A is b (n rows of k floats, ldb apart, or with transA k rows of
// n), given by calls whose trips add up to trips; none where there is
// no tile t. Without transA the tile's rows lie together, from b[i*ldb]
// to the last row's end, and the hints go no more than 16 floats (a
// cache line) apart from that end back to the start, or to up to 15
// floats before it, in the tile before. With transA the tile is columns
// i to i+5: a hint in each of the k rows, at the last column, whose
// cache line the tile before (columns i-6 to i-1) has not already
// brought in. Where the trips are too few, the hints cover the tile's
// start.
func newAhead(b []float32, ldb, k, n, t int, transA bool, trips int) ahead {
	h := ahead{base: uintptr(unsafe.Pointer(&b[0]))}
	i := t * mr
	if i >= n {
		return h
	}
	rows := min(mr, n-i)
	if transA {
		h.first, h.stride, h.count = i+rows-1, ldb, k
		return h
	}
	span := (rows-1)*ldb + k
	h.stride = min(nr, max(1, ceilDiv(span-1, max(trips-1, 1))))
	h.count = ceilDiv(span-1, h.stride) + 1
	h.first = i*ldb + span - 1 - (h.count-1)*h.stride
	return h
}

// call returns the first hint and the stride in floats for a kernel call
// of kc steps, and moves the plan on.
func (h *ahead) call(kc int) (hint uintptr, stride int) {
	c := kc / hintTrip
	switch {
	case c == 0 || h.count == 0:
		return h.base, 0
	case h.next >= h.count:
		return h.at(h.count - 1), 0
	}
	j := min(h.next, max(h.count-c, 0))
	h.next += c
	return h.at(j), h.stride
}

// at returns the address of hint j.
func (h *ahead) at(j int) uintptr {
	return h.base + uintptr(4*(h.first+j*h.stride))
}

// transRowBias lays out the biases of Cᵀ's rows (C's columns) for
// ntsgemm, 16 floats per tile of 6 rows: rows 0-3 twice, then rows 4-5
// four times, zeros past the end.
func transRowBias(tab, bias []float32) {
	clear(tab)
	for t := 0; t*mr < len(bias); t++ {
		r := bias[t*mr:]
		d := tab[t*transRowTab:]
		for k := range min(4, len(r)) {
			d[k], d[4+k] = r[k], r[k]
		}
		for k := 4; k < min(mr, len(r)); k++ {
			for x := range 4 {
				d[8+2*x+k-4] = r[k]
			}
		}
	}
}

// transColBias lays out the biases of Cᵀ's columns (C's rows) for
// ntsgemm, 96 floats per panel of 16: for each half of 8 columns c0..c7,
// [cj x4, cj+4 x4] for j < 4, then [c0 c0 c1 c1 c4 c4 c5 c5] and
// [c2 c2 c3 c3 c6 c6 c7 c7]; zeros past the end.
func transColBias(tab, bias []float32) {
	clear(tab)
	at := func(s int) float32 {
		if s < len(bias) {
			return bias[s]
		}
		return 0
	}
	for q := 0; q*nr < len(bias); q++ {
		for h := range 2 {
			d := tab[q*transColTab+h*transColTab/2:]
			c := func(j int) float32 { return at(q*nr + 8*h + j) }
			for j := range 4 {
				for x := range 4 {
					d[8*j+x], d[8*j+4+x] = c(j), c(j+4)
				}
			}
			for k, j := range [8]int{0, 0, 1, 1, 4, 4, 5, 5} {
				d[32+k], d[40+k] = c(j), c(j+2)
			}
		}
	}
}
