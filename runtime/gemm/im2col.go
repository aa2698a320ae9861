package gemm

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cnnc/cnnc/runtime"
)

// Im2col is the im2col matrix of one sample of a convolution, which
// SgemmIm2col multiplies without building it: row k = (c*KH+p)*KW+q and
// column j = oy*OW+ox hold
//
//	X[c*H*W + (oy*SH+p*DH)*W + ox*SW + q*DW]
//
// for a sample X of C channels of H x W (padded already, if the
// convolution pads), a KH x KW kernel, strides SH, SW and dilations DH, DW,
// and an output of OH x OW.
type Im2col struct {
	X                      []float32
	C, H, W                int
	KH, KW, SH, SW, DH, DW int
	OH, OW                 int
}

// flat reports whether column j of the matrix lies at X[j] in each row's
// run (stride 1 and an output as wide as the input), so that the columns
// of every row of the matrix lie side by side in X, across output rows: a
// convolution computed over the input's whole width, whose last KW-1
// columns of each output row are not part of its output (see widen).
func (im *Im2col) flat() bool { return im.SW == 1 && im.SH == 1 && im.OW == im.W }

// Rows returns the rows of the matrix, C*KH*KW.
func (im *Im2col) Rows() int { return im.C * im.KH * im.KW }

// Cols returns the columns of the matrix, OH*OW.
func (im *Im2col) Cols() int { return im.OH * im.OW }

// check panics unless the geometry is consistent and X holds the sample.
func (im *Im2col) check() {
	if im.C < 1 || im.H < 1 || im.W < 1 || im.KH < 1 || im.KW < 1 || im.SH < 1 || im.SW < 1 ||
		im.DH < 1 || im.DW < 1 || im.OH < 1 || im.OW < 1 {
		panic(fmt.Sprintf("gemm: Im2col %+v: every size, stride and dilation must be at least 1", *im))
	}
	if (im.OH-1)*im.SH+(im.KH-1)*im.DH >= im.H || (im.OW-1)*im.SW+(im.KW-1)*im.DW >= im.W {
		panic(fmt.Sprintf("gemm: Im2col: a %dx%d output of a %dx%d kernel (stride %dx%d, dilation %dx%d) reads past the %dx%d input",
			im.OH, im.OW, im.KH, im.KW, im.SH, im.SW, im.DH, im.DW, im.H, im.W))
	}
	if len(im.X) < im.C*im.H*im.W {
		panic(fmt.Sprintf("gemm: Im2col: len(X) = %d, want >= %d for %d x %d x %d", len(im.X), im.C*im.H*im.W, im.C, im.H, im.W))
	}
}

// SgemmIm2col computes C = A*B, or C += A*B when accumulate is set, followed
// by the epilogue ep, where A is m x b.Rows() (row-major, rows lda apart),
// B is the im2col matrix b describes and C is m x b.Cols() (rows ldc
// apart): a convolution's forward GEMM, whose B panels are packed straight
// from the sample. A panel of 16 columns packs fastest when its columns lie
// side by side in the sample: at stride 1 when the output's width is a
// multiple of 16 (codegen/asm.NR). It splits the work over pool as SgemmPar
// does, and gives the bits SgemmEpi gives on the matrix built.
func SgemmIm2col(pool *runtime.Pool, m int, a []float32, lda int, b Im2col, c []float32, ldc int, accumulate bool, ep Epilogue) {
	if cl := forwardCall(m, a, lda, &b, c, ldc, accumulate, ep); cl.m > 0 {
		launch(pool, cl, &b)
	}
}

// forwardCall checks the arguments of SgemmIm2col and returns its call,
// one with no rows where there is nothing to compute.
func forwardCall(m int, a []float32, lda int, b *Im2col, c []float32, ldc int, accumulate bool, ep Epilogue) call {
	b.check()
	n, k := b.Cols(), b.Rows()
	checkMatrix("A", m, k, a, lda)
	checkMatrix("C", m, n, c, ldc)
	checkEpilogue(m, n, ep)
	return call{m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, accumulate: accumulate, ep: ep}
}

// SgemmIm2colT computes C = A*Bᵀ, or C += A*Bᵀ when accumulate is set,
// where A is m x b.Cols() (row-major, rows lda apart), B is the im2col
// matrix b describes and C is m x b.Rows() (rows ldc apart): a
// convolution's weight gradient, the output gradient times the transposed
// im2col matrix, whose panels are packed straight from the sample. At
// stride 1 the assembly transposes runs of a row of the output, 4 floats of
// 16 rows at a time. It splits the work over pool as SgemmPar does, and
// gives the bits SgemmPar gives on the matrix built.
func SgemmIm2colT(pool *runtime.Pool, m int, a []float32, lda int, b Im2col, c []float32, ldc int, accumulate bool) {
	b.check()
	n, k := b.Rows(), b.Cols()
	checkMatrix("A", m, k, a, lda)
	checkMatrix("C", m, n, c, ldc)
	if m == 0 {
		return
	}
	launch(pool, call{m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, accumulate: accumulate, imT: true}, &b)
}

// SgemmIm2colBT computes C = A*Bᵀ, or C += A*Bᵀ when accumulate is set,
// where A is the im2col matrix a describes, B is n x a.Cols() (row-major,
// rows ldb apart) and C is a.Rows() x n (rows ldc apart): a convolution's
// weight gradient, transposed, as the im2col matrix times the transposed
// output gradient. With the assembly kernels (AVX-512 or AVX2) they read
// A's rows straight from the sample, an output pixel's taps at a time, and
// only B is packed, KH*KW times smaller than the matrix that SgemmIm2colT
// packs; in pure Go it runs SgemmIm2colT on Cᵀ. Either way it gives the bits of SgemmIm2colT's
// product, transposed.
func SgemmIm2colBT(pool *runtime.Pool, n int, a Im2col, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	a.check()
	m, k := a.Rows(), a.Cols()
	checkMatrix("B", n, k, b, ldb)
	checkMatrix("C", m, n, c, ldc)
	if n == 0 {
		return
	}
	if useAsm {
		launch(pool, call{m: m, n: n, k: k, b: b, ldb: ldb, transB: true, c: c, ldc: ldc, accumulate: accumulate, imA: true}, &a)
		return
	}
	launch(pool, call{m: n, n: m, k: k, a: b, lda: ldb, c: c, ldc: ldc, accumulate: accumulate, imT: true, transC: true}, &a)
}

// SgemmIm2colPix computes what SgemmIm2col does, C = A*B or C += A*B
// followed by the epilogue ep, B the im2col matrix b describes, as its
// transpose Cᵀ = Bᵀ*Aᵀ: with the assembly kernels a tile's rows are
// output pixels, whose taps the kernels read straight from the sample,
// and its 16 columns are rows of A, packed as B panels. Where A has few
// rows (a convolution's output channels: 16) and B few columns (its
// output pixels, such as 10x10), the micro-kernels' tiles then fit the
// product better: LeNet-5's second convolution, 16 x 100, runs as 17
// tiles of 6 pixels by 16 channels instead of 3 of 6, 6 and 4 channels by 9
// panels of 16 of the 140 columns of its flat product (see widen). Each
// element's sum runs over the same terms in the same order, so the bits
// are SgemmIm2col's; in pure Go it runs SgemmIm2col. The epilogue's bias
// is a convolution's, RowBias: a ColBias would be added before it in the
// transposed product, and SgemmIm2colPix panics.
func SgemmIm2colPix(pool *runtime.Pool, m int, a []float32, lda int, b Im2col, c []float32, ldc int, accumulate bool, ep Epilogue) {
	if ep.ColBias != nil {
		panic("gemm: SgemmIm2colPix with a column bias: use SgemmIm2col")
	}
	cl := forwardCall(m, a, lda, &b, c, ldc, accumulate, ep)
	if cl.m == 0 {
		return
	}
	if useAsm {
		// Cᵀ = Bᵀ*Aᵀ: the call's A is the im2col matrix's transpose, its
		// B the caller's A, transposed.
		cl = call{m: cl.n, n: cl.m, k: cl.k, b: a, ldb: lda, transB: true, c: c, ldc: ldc, accumulate: accumulate,
			ep: Epilogue{ColBias: ep.RowBias, ReLU: ep.ReLU, Tanh: ep.Tanh}, imA: true, imP: true, transC: true}
	}
	launch(pool, cl, &b)
}

// An im2colGeom is an Im2col without its sample: what its offsets depend
// on.
type im2colGeom struct {
	C, H, W, KH, KW, SH, SW, DH, DW, OH, OW int
}

// im2colTables are the offsets into the sample of an im2col matrix of one
// geometry, which every GEMM on it packs from.
type im2colTables struct {
	kOff []int32 // where row k starts in X
	pOff []int32 // where panel q's first column does
	pix  []int32 // where column j does
	// whole[q] reports whether panel q's 16 columns lie side by side.
	whole []bool
	// direct reports whether the assembly kernels can read every panel
	// from the sample: every panel is whole, but for a last, partial
	// panel of a flat matrix (see flat), whose 16 floats they read
	// though it has fewer columns. They then read X up to end.
	direct bool
	end    int
	// The runs of each panel that is not whole (see segments).
	segN              []uint8
	segShift, segMask []int32
}

// tablesCache holds the tables of every geometry seen, by im2colGeom; a
// model has a few. Computing them costs as much as packing a small
// convolution's panels, and a GEMM runs per sample.
var tablesCache sync.Map

// tablesFor returns the tables of im's geometry, computing them on first
// use.
func tablesFor(im *Im2col) *im2colTables {
	key := im2colGeom{im.C, im.H, im.W, im.KH, im.KW, im.SH, im.SW, im.DH, im.DW, im.OH, im.OW}
	if t, ok := tablesCache.Load(key); ok {
		return t.(*im2colTables)
	}
	t, _ := tablesCache.LoadOrStore(key, newTables(im))
	return t.(*im2colTables)
}

func newTables(im *Im2col) *im2colTables {
	t := &im2colTables{}
	for c := range im.C {
		for p := range im.KH {
			for q := range im.KW {
				t.kOff = append(t.kOff, int32(c*im.H*im.W+p*im.DH*im.W+q*im.DW))
			}
		}
	}
	n := im.Cols()
	flat := im.flat()
	t.direct = n%nr == 0 || flat
	for j := range n {
		t.pix = append(t.pix, int32((j/im.OW)*im.SH*im.W+(j%im.OW)*im.SW))
	}
	for j := 0; j < n; j += nr {
		oy, ox := j/im.OW, j%im.OW
		whole := im.SW == 1 && j+nr <= n && (ox+nr <= im.OW || flat)
		t.pOff = append(t.pOff, int32(oy*im.SH*im.W+ox*im.SW))
		t.whole = append(t.whole, whole)
		t.direct = t.direct && (whole || j+nr > n)
		t.segments(im, j, whole)
	}
	t.end = int(slices.Max(t.kOff)) + int(t.pOff[len(t.pOff)-1]) + nr
	return t
}

// segments appends the runs of the panel at column j to segN, segShift and
// segMask (see packB16Segs): at stride 1, its columns lie side by side in
// the sample within each output row. segN is 0 when the panel is whole or
// has more runs than packB16Segs takes.
func (t *im2colTables) segments(im *Im2col, j int, whole bool) {
	cols := min(nr, im.Cols()-j)
	var shift [segsMax]int32
	var mask [segsMax * nr]int32
	n := 0
	if !whole && im.SW == 1 {
		prev := -2
		for jj := range cols {
			oy, ox := (j+jj)/im.OW, (j+jj)%im.OW
			off := oy*im.SH*im.W + ox
			if off != prev+1 {
				if n == segsMax {
					n = 0
					break
				}
				shift[n] = int32(off - jj)
				n++
			}
			mask[(n-1)*nr+jj] = -1
			prev = off
		}
	}
	t.segN = append(t.segN, uint8(n))
	t.segShift = append(t.segShift, shift[:]...)
	t.segMask = append(t.segMask, mask[:]...)
}

// wideMax bounds the work widen takes on: the panels of the flat matrix
// over those of the convolution's own, in eighths. Packing a panel cost
// about half of multiplying it by six rows (LeNet-5's convolutions: 28 and
// 10 wide outputs of 32 and 14 wide inputs).
const wideMax = 12

// A wideOut is where the product of a call that computes into the driver's
// wideC goes: C, its row stride, and for a widened call the output width
// the flat matrix widened.
type wideOut struct {
	c       []float32
	ldc, ow int
}

// widen switches the driver's im2col product to its flat form (see
// Im2col.flat) when the assembly kernels can then read every panel from
// the sample rather than packing it: at stride 1, an output whose width is
// not a multiple of 16 has panels that cross output rows, and packing
// them cost more than computing the columns past each output row of the
// flat matrix. The driver computes the product into wideC from a copy of
// the sample in wideX with zeros past its end, where the kernels read the
// last panel's 16 floats; narrow then copies the output's columns to C.
// Each column's sum runs over the same terms in the same order, so the
// bits are those of the product packed. It reports whether it switched.
func (g *driver) widen() bool {
	im := g.im
	if g.imT || g.imA || !useAsm || g.accumulate || g.ep.ColBias != nil || g.direct() ||
		im.SW != 1 || im.SH != 1 || im.OW >= im.W || ceilDiv(im.OH*im.W, nr)*8 > ceilDiv(im.OH*im.OW, nr)*wideMax {
		return false
	}
	g.out = wideOut{c: g.c, ldc: g.ldc, ow: im.OW}
	flat := *im
	flat.OW = im.W
	tab := tablesFor(&flat)
	size := im.C * im.H * im.W
	g.wideX = aligned(g.wideX, max(size, tab.end))
	copy(g.wideX, im.X[:size])
	clear(g.wideX[size:])
	flat.X = g.wideX
	g.imB, g.tab = flat, tab
	n := im.OH * im.W
	g.wideC = aligned(g.wideC, g.m*n)
	g.c, g.ldc, g.n = g.wideC, n, n
	return true
}

// transposeC points the driver's C at a buffer of its own, holding the
// transpose of the caller's C when the call accumulates, for a call with
// transC; untransposeC writes the product back.
func (g *driver) transposeC() {
	g.out = wideOut{c: g.c, ldc: g.ldc}
	g.wideC = aligned(g.wideC, g.m*g.n)
	if g.accumulate {
		transpose(g.wideC, g.n, g.c, g.ldc, g.n, g.m)
	}
	g.c, g.ldc = g.wideC, g.n
}

func (g *driver) untransposeC() {
	transpose(g.out.c, g.out.ldc, g.wideC, g.n, g.m, g.n)
}

// narrow copies a widened call's output columns from wideC to the
// caller's C.
func (g *driver) narrow() {
	im, o := g.im, g.out
	if o.ldc == im.OH*o.ow {
		CopyRows(o.c, g.wideC, g.m*im.OH, o.ow, o.ow, im.W)
		return
	}
	for i := range g.m {
		CopyRows(o.c[i*o.ldc:], g.wideC[i*g.ldc:], im.OH, o.ow, o.ow, im.W)
	}
}

// packBIm2col packs panels [lo, hi) of the B block at rows [pc, pc+kc) and
// columns [jc, jc+nc) of an im2col matrix into dst.
func (g *driver) packBIm2col(dst []float32, jc, nc, pc, kc, lo, hi int) {
	if g.direct() {
		return // the kernels read the panels from the sample
	}
	im := g.im
	x := im.X[:im.C*im.H*im.W]
	t := g.tab
	koffs := t.kOff[pc : pc+kc]
	for jp := lo; jp < hi; {
		q := jc/nr + jp
		d := dst[jp*nr*kc:]
		if t.whole[q] {
			// A run of panels whose rows are 16 floats side by side.
			run := 1
			for jp+run < hi && t.whole[q+run] {
				run++
			}
			if avx512() {
				packB16OffsZ(kc, run, &x[0], &koffs[0], &t.pOff[q], &d[0])
			} else if useAsm {
				packB16Offs(kc, run, &x[0], &koffs[0], &t.pOff[q], &d[0])
			} else {
				for i := range run {
					dq := d[i*nr*kc:]
					for r, ko := range koffs {
						o := int(ko) + int(t.pOff[q+i])
						copy(dq[r*nr:r*nr+nr], x[o:o+nr])
					}
				}
			}
			jp += run
			continue
		}
		if n := int(t.segN[q]); n > 0 && useAsm {
			// Columns that cross output rows: a few runs of the sample.
			pack := packB16Segs
			if avx512() {
				pack = packB16SegsZ
			}
			pack(kc, n, &x[0], &koffs[0], &t.segShift[q*segsMax], &t.segMask[q*segsMax*nr], &d[0])
			jp++
			continue
		}
		// Columns that stride, or cross many output rows: gather them.
		j0 := jc + jp*nr
		cols := min(nr, jc+nc-j0)
		var joffs [nr]int
		for jj := range cols {
			j := j0 + jj
			joffs[jj] = (j/im.OW)*im.SH*im.W + (j%im.OW)*im.SW
		}
		d = d[:nr*kc]
		if cols < nr {
			clear(d)
		}
		for r, ko := range koffs {
			row := d[r*nr : r*nr+cols]
			for jj := range row {
				row[jj] = x[int(ko)+joffs[jj]]
			}
		}
		jp++
	}
}

// packBIm2colT packs panels [lo, hi) of the B block at rows [pc, pc+kc) and
// columns [jc, jc+nc) of a transposed im2col matrix into dst: panel jp holds
// im2col rows jc+16*jp.. at the output pixels pc..pc+kc-1.
func (g *driver) packBIm2colT(dst []float32, jc, nc, pc, kc, lo, hi int) {
	im := g.im
	x := im.X[:im.C*im.H*im.W]
	for jp := lo; jp < hi; jp++ {
		j0 := jc + jp*nr
		cols := min(nr, jc+nc-j0)
		d := dst[jp*nr*kc : (jp+1)*nr*kc]
		koffs := g.tab.kOff[j0 : j0+cols]
		if im.SW == 1 && useAsm {
			// The pixels of each output row lie side by side. A partial
			// panel repeats its last row: the micro-kernel's columns past
			// C's edge are computed but never stored.
			var ko [nr]int32
			copy(ko[:], koffs)
			for jj := cols; jj < nr; jj++ {
				ko[jj] = koffs[cols-1]
			}
			for k := pc; k < pc+kc; {
				oy, ox := k/im.OW, k%im.OW
				run := min(im.OW-ox, pc+kc-k)
				packB16TOffs(run, &x[oy*im.SH*im.W+ox], &ko[0], &d[(k-pc)*nr])
				k += run
			}
			continue
		}
		if cols < nr {
			clear(d)
		}
		for k := pc; k < pc+kc; k++ {
			po := (k/im.OW)*im.SH*im.W + (k%im.OW)*im.SW
			row := d[(k-pc)*nr : (k-pc)*nr+cols]
			for jj, ko := range koffs {
				row[jj] = x[int(ko)+po]
			}
		}
	}
}
