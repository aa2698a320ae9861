package gemm

import (
	"unsafe"

	"github.com/cnnc/cnnc/runtime"
)

// A linear layer's weight W, outs x ins, takes part in three products a
// training step: the forward Y = X*Wᵀ and the backward-data dX = dY*W
// read it, the weight gradient dW = dYᵀ*X writes its gradient, which the
// optimiser then applies to it element by element. Stored row-major, as
// PyTorch has it, W suits the forward, whose AVX2 kernels read six of its
// rows where they lie (see trans.go), but the backward-data then reads
// its columns: six floats of each row a step, a row 2,000 bytes on for
// the MLP, and its kernels run a sixth slower than on a packed strip;
// packing W for it once a step costs as much as it saves, a megabyte a
// layer written to memory.
//
// So where the AVX2 kernels run and the weight is large, W is stored as
// column panels instead (runtime.PanelIndex): 16 columns at a time, row
// after row. A panel is then what the packed kernels read as a B panel,
// and the backward-data runs as a packed product without packing W
// (LinearBackwardData); the forward's kernels read six rows of each panel
// in turn, a jump from one panel to the next every 16 steps that they
// prefetch themselves (psgemm, see codegen/asm); and the weight
// gradient's tiles, six rows of a panel, are 384 contiguous bytes, the
// tiles of a panel one after another (the sgemmDown kernels), which the
// optimiser updates panel by panel while they are in cache. The optimiser
// needs no change: it works element by element, on a momentum laid out as
// the weight. Checkpoints and initialisation see the row-major matrix
// (runtime.Param.Logical).
//
// Measured on a Xeon's two cores with AVX2 (BenchmarkLinearLayers: the
// MLP's ten linear layers at batch 64, forward with tanh, backward-data
// with tanh's backward, weight gradient with SGD's update, 3 runs), against
// the same products on row-major weights: a step 5,302-5,379 us against
// 5,712-5,867; the backward-data products 1,580-1,585 against 1,824-1,852,
// the weight gradients with their updates 1,966-1,975 against 2,147-2,195
// (the update's momentum hinted into L2 during the panel's product, the
// weight still there from the backward-data, which the same worker ran on
// the same panels), the forward products 1,767-1,776 against 1,731-1,765.
// The MLP's training benchmark (cnncbench, 4 alternated pairs) ran
// 11,901-12,063 images a second against 10,929-11,115.

// panelFloats is the smallest weight, in floats, stored as column panels:
// as large as a core's L2 (512 KiB), so that it comes from L3 in each
// product; a smaller one stays in cache from one product to the next. A
// variable only so that tests can shrink it.
var panelFloats = 1 << 17

// WeightPanels reports whether a linear layer's weight of outs x ins is
// stored as column panels (runtime.Param.Panels) on this CPU: where the
// AVX2 kernels run, the weight has panelFloats floats or more, and ins
// is short enough for the forward product to run transposed (transKMax).
// The model asks when it makes the parameter, and the Linear functions
// ask again, so the two agree.
func WeightPanels(outs, ins int) bool {
	return useAsm && !avx512() && outs*ins >= panelFloats && outs >= mr && ins >= runtime.PanelWidth && ins <= transKMax
}

// LinearForward is SgemmHandoff for a linear layer's forward product,
// Y = X*Wᵀ with the epilogue ep, where W, outs x ins, lies as
// WeightPanels says: m rows of X (ldx apart), Y ldy apart.
func LinearForward(pool *runtime.Pool, m, outs, ins int, x []float32, ldx int, w, y []float32, ldy int, ep Epilogue, from, to *Handoff) {
	checkEpilogue(m, outs, ep)
	sgemm(pool, call{transB: true, m: m, n: outs, k: ins, a: x, lda: ldx, b: w, ldb: ins, c: y, ldc: ldy, ep: ep, from: from, to: to, panels: WeightPanels(outs, ins)})
}

// LinearGemv is GemvPar for a linear layer's weight W, outs x ins, that
// lies as WeightPanels says: y_s = W*x_s for n vectors.
func LinearGemv(pool *runtime.Pool, n, outs, ins int, w, x []float32, ldx int, y []float32, ldy int) {
	gemvPar(pool, n, outs, ins, w, ins, x, ldx, y, ldy, WeightPanels(outs, ins))
}

// gemvPanelRows sets y[r] = (W*x)[r] for rows [r0, r1) of W, outs x ins,
// stored as column panels in w.
func gemvPanelRows(r0, r1, outs, ins int, w, x, y []float32) {
	full := ins / runtime.PanelWidth * runtime.PanelWidth
	for r := r0; r < r1; r += 4 {
		gemvPanels(min(4, r1-r), full, w[r*runtime.PanelWidth:], runtime.PanelWidth*outs, x, y[r:])
	}
	width := ins - full // the last panel's, narrower than 16
	if width == 0 {
		return
	}
	last := w[full*outs:]
	for r := r0; r < r1; r++ {
		s := y[r]
		for j, v := range last[r*width : (r+1)*width] {
			s += v * x[full+j]
		}
		y[r] = s
	}
}

// LinearBackwardData computes a linear layer's dX = dY*W, dY m x outs
// (rows lddy apart), dX m x ins (lddx apart), for W, outs x ins, as
// WeightPanels says it lies. Stored as column panels, each panel of W is
// a packed B panel: the workers share the packing of dY as the A panels
// and then W's panels, each multiplying its panels by every A panel
// (which stays in L2), so that a panel of W is read once, into L1.
func LinearBackwardData(pool *runtime.Pool, m, outs, ins int, dy []float32, lddy int, w, dx []float32, lddx int) {
	if !WeightPanels(outs, ins) {
		SgemmPar(pool, false, false, m, ins, outs, dy, lddy, w, ins, dx, lddx, false)
		return
	}
	checkArgs(false, false, m, ins, outs, dy, lddy, w, ins, dx, lddx)
	if m == 0 {
		return
	}
	workers := poolWorkers(pool)
	g := getDriver(workers)
	g.call = call{m: m, n: ins, k: outs, a: dy, lda: lddy, b: w, c: dx, ldc: lddx, panels: true}
	g.runPanels(pool, workers, g.panelsDataFn)
	g.call = call{}
	putDriver(g)
}

// LinearBackwardWeight computes a linear layer's weight gradient
// dW = dYᵀ*X, dY m x outs (rows lddy apart), X m x ins (ldx apart), into
// dw, outs x ins, laid out as WeightPanels says. Row-major, it is
// SgemmRows, u taking rows; as column panels, the workers share the
// panels, and u, when not nil, takes each panel's range of elements as
// soon as the panel is done (runtime.RowUpdate).
func LinearBackwardWeight(pool *runtime.Pool, m, outs, ins int, dy []float32, lddy int, x []float32, ldx int, dw []float32, u *runtime.RowUpdate) {
	if !WeightPanels(outs, ins) {
		SgemmRows(pool, true, false, outs, ins, m, dy, lddy, x, ldx, dw, ins, false, u)
		return
	}
	checkArgs(true, false, outs, ins, m, dy, lddy, x, ldx, dw, ins)
	if m == 0 {
		clear(dw[:outs*ins])
		if u != nil {
			u.Done(0, outs*ins)
		}
		return
	}
	workers := poolWorkers(pool)
	g := getDriver(workers)
	g.call = call{transA: true, m: outs, n: ins, k: m, a: dy, lda: lddy, b: x, ldb: ldx, c: dw, update: u, panels: true}
	g.runPanels(pool, workers, g.panelsWeightFn)
	g.call = call{}
	putDriver(g)
}

// poolWorkers returns the workers of pool, 1 for a nil pool.
func poolWorkers(pool *runtime.Pool) int {
	if pool == nil {
		return 1
	}
	return pool.Workers()
}

// runPanels packs the call's A (transposed where transA) as A panels
// shared by the workers, each panel of mr rows and all of k one after
// another, and then runs fn over the column panels of C.
func (g *driver) runPanels(pool *runtime.Pool, workers int, fn func(w, lo, hi int)) {
	strips := ceilDiv(g.m, mr)
	g.sharedA = alignedCap(g.sharedA, strips*mr*g.k, strips*mr*g.k)
	panels := ceilDiv(g.n, runtime.PanelWidth)
	if workers == 1 {
		g.packPanelA(0, strips)
		fn(0, 0, panels)
		return
	}
	pool.For(strips, g.packPanelAFn)
	pool.ForWorker(panels, fn)
}

// packPanelA packs A's strips [lo, hi) of mr rows for runPanels.
func (g *driver) packPanelA(lo, hi int) {
	for s := lo; s < hi; s++ {
		var a []float32
		if g.transA {
			a = g.a[s*mr:]
		} else {
			a = g.a[s*mr*g.lda:]
		}
		PackA(g.sharedA[s*mr*g.k:(s+1)*mr*g.k], g.transA, min(mr, g.m-s*mr), g.k, a, g.lda)
	}
}

// panelsData runs LinearBackwardData's column panels [lo, hi) of dX on
// worker w: each panel of W (k = outs rows of up to 16 floats) times
// every A panel. The last panel, narrower than 16 where ins is not a
// multiple, goes through the worker's buffer, padded with zeros, and its
// tiles through the worker's tile.
func (g *driver) panelsData(w, lo, hi int) {
	wk := &g.w[w]
	for p := lo; p < hi; p++ {
		c0 := p * runtime.PanelWidth
		width := min(runtime.PanelWidth, g.n-c0)
		bp := g.b[c0*g.k:]
		if width < nr {
			wk.bufB = alignedCap(wk.bufB, nr*g.k, nr*g.k)
			for o := range g.k {
				row := wk.bufB[o*nr : (o+1)*nr]
				copy(row, bp[o*width:(o+1)*width])
				clear(row[width:])
			}
			bp = wk.bufB
		}
		for s := 0; s*mr < g.m; s++ {
			rows := min(mr, g.m-s*mr)
			a := g.sharedA[s*mr*g.k:]
			c := g.c[s*mr*g.ldc+c0:]
			if width == nr {
				kernelEpiAsm(rows, g.k, a, bp, c, g.ldc, false, nil, 0, 0)
				continue
			}
			kernelEpiAsm(rows, g.k, a, bp, wk.tile[:], nr, false, nil, 0, 0)
			for i := range rows {
				copy(c[i*g.ldc:i*g.ldc+width], wk.tile[i*nr:])
			}
		}
	}
}

// panelsWeight runs LinearBackwardWeight's column panels [lo, hi) of dW
// on worker w: X's columns of the panel packed as a B panel, times every
// A panel (dY's columns), down the panel's tiles; then the update takes
// the panel. The last panel, narrower than 16 where ins is not a
// multiple, goes through the worker's buffer.
func (g *driver) panelsWeight(w, lo, hi int) {
	wk := &g.w[w]
	tiles, rest := g.m/mr, g.m%mr
	wk.bufA = alignedCap(wk.bufA, nr*g.k, nr*g.k) // A is shared: the buffer holds the B panel
	bp := wk.bufA
	for p := lo; p < hi; p++ {
		c0 := p * runtime.PanelWidth
		width := min(runtime.PanelWidth, g.n-c0)
		if width == nr {
			_ = g.b[(g.k-1)*g.ldb+c0+nr-1] // the rows packB16N reads
			packB16N(g.k, 1, &g.b[c0], g.ldb, &bp[0])
		} else {
			for k := range g.k {
				row := bp[k*nr : (k+1)*nr]
				copy(row, g.b[k*g.ldb+c0:][:width])
				clear(row[width:])
			}
		}
		c := g.c[c0*g.m : (c0+width)*g.m]
		if width < nr {
			wk.bufB = alignedCap(wk.bufB, nr*ceilDiv(g.m, mr)*mr, nr*ceilDiv(g.m, mr)*mr)
			c = wk.bufB
		}
		h := g.panelHint(c0, width, tiles+min(rest, 1))
		if tiles > 0 {
			kernelDown(mr, g.k, tiles, g.sharedA, bp, c, nr, h)
		}
		if rest > 0 {
			kernelDown(rest, g.k, 1, g.sharedA[tiles*mr*g.k:], bp, c[tiles*mr*nr:], nr, hint{})
		}
		if width < nr {
			dst := g.c[c0*g.m:]
			for r := range g.m {
				copy(dst[r*width:(r+1)*width], c[r*nr:])
			}
		}
		if g.update != nil {
			g.update.Done(c0*g.m, (c0+width)*g.m)
		}
	}
}

// panelHint returns the hints for the kernel calls of a weight
// gradient's panel at column c0, width wide, over tiles tiles: the last
// of the update's operands (the momentum, where there is one; the weight
// the backward-data product has just read), the panel's range of it
// spread over the calls' trips, so that the update finds it in L2.
func (g *driver) panelHint(c0, width, tiles int) hint {
	if g.update == nil || len(g.update.Reads) == 0 {
		return hint{}
	}
	r := g.update.Reads[len(g.update.Reads)-1][c0*g.m : (c0+width)*g.m]
	trips := max(tiles*(g.k/hintTrip), 1)
	return hint{at: uintptr(unsafe.Pointer(&r[0])), stride: ceilDiv(len(r), trips)}
}

// WeightIndex returns where element (o, i) of a linear layer's weight,
// outs x ins, lies as WeightPanels lays it out.
func WeightIndex(outs, ins, o, i int) int {
	if WeightPanels(outs, ins) {
		return runtime.PanelIndex(outs, ins, o, i)
	}
	return o*ins + i
}
