//go:build !purego

package gemm

import (
	"os"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// asmSupported reports whether the CPU runs the generated kernels and the
// user has not asked for the Go ones with CNNC_PUREGO=1.
func asmSupported() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && os.Getenv("CNNC_PUREGO") != "1"
}

// avx512Supported reports whether the CPU runs the AVX-512 micro-kernels
// and the user has not turned them off with CNNC_AVX512=0, which leaves the
// AVX2 ones.
func avx512Supported() bool {
	return asmSupported() && cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && os.Getenv("CNNC_AVX512") != "0"
}

// zKernels[panels][rows] is the AVX-512 micro-kernel for rows rows and
// panels B panels.
var zKernels = [zPanelsMax + 1][mr + 1]func(kc int, a, b, c *float32, ldc int, rowBias, colBias *float32, flags, mask int){
	1: {nil, zgemm1x16, zgemm2x16, zgemm3x16, zgemm4x16, zgemm5x16, zgemm6x16},
	2: {nil, zgemm1x32, zgemm2x32, zgemm3x32, zgemm4x32, zgemm5x32, zgemm6x32},
	3: {nil, zgemm1x48, zgemm2x48, zgemm3x48, zgemm4x48, zgemm5x48, zgemm6x48},
	4: {nil, zgemm1x64, zgemm2x64, zgemm3x64, zgemm4x64, zgemm5x64, zgemm6x64},
}

// dzKernels[panels][rows] is the AVX-512 micro-kernel that reads its B
// panels straight from a convolution's sample (see kernelZD).
var dzKernels = [zPanelsMax + 1][mr + 1]func(kc int, a, x *float32, koffs, poffs *int32, c *float32, ldc int, rowBias, colBias *float32, flags, mask int){
	1: {nil, dzgemm1x16, dzgemm2x16, dzgemm3x16, dzgemm4x16, dzgemm5x16, dzgemm6x16},
	2: {nil, dzgemm1x32, dzgemm2x32, dzgemm3x32, dzgemm4x32, dzgemm5x32, dzgemm6x32},
	3: {nil, dzgemm1x48, dzgemm2x48, dzgemm3x48, dzgemm4x48, dzgemm5x48, dzgemm6x48},
	4: {nil, dzgemm1x64, dzgemm2x64, dzgemm3x64, dzgemm4x64, dzgemm5x64, dzgemm6x64},
}

// kernelZD is kernelZ for panels panels of an im2col matrix, read from
// the sample x: row k of panel p is x[koffs[k]+poffs[p]:][:16], whole
// even where cols ends the last panel early. The caller has checked that
// every row lies in x.
func kernelZD(panels, rows, kc int, a, x []float32, koffs, poffs []int32, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int) {
	a = a[:kc*mr]
	koffs = koffs[:kc]
	poffs = poffs[:panels]
	c = c[:(rows-1)*ldc+cols]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, cols)
	mask := 1<<(cols-(panels-1)*nr) - 1
	dzKernels[panels][rows](kc, &a[0], &x[0], &koffs[0], &poffs[0], &c[0], ldc, rowBias, colBias, flags, mask)
	ep.tanhRows(c, ldc, rows, cols)
}

// azKernels[transA][panels][rows] is the AVX-512 micro-kernel that reads A
// where it is stored: rows lda apart (nzgemm) or, transposed, columns lda
// apart (tzgemm).
var azKernels = [2][zPanelsMax + 1][mr + 1]func(kc int, a *float32, lda int, b, c *float32, ldc int, rowBias, colBias *float32, flags, mask int, hint uintptr, hintStride int){
	{
		1: {nil, nzgemm1x16, nzgemm2x16, nzgemm3x16, nzgemm4x16, nzgemm5x16, nzgemm6x16},
		2: {nil, nzgemm1x32, nzgemm2x32, nzgemm3x32, nzgemm4x32, nzgemm5x32, nzgemm6x32},
		3: {nil, nzgemm1x48, nzgemm2x48, nzgemm3x48, nzgemm4x48, nzgemm5x48, nzgemm6x48},
		4: {nil, nzgemm1x64, nzgemm2x64, nzgemm3x64, nzgemm4x64, nzgemm5x64, nzgemm6x64},
	},
	{
		1: {nil, tzgemm1x16, tzgemm2x16, tzgemm3x16, tzgemm4x16, tzgemm5x16, tzgemm6x16},
		2: {nil, tzgemm1x32, tzgemm2x32, tzgemm3x32, tzgemm4x32, tzgemm5x32, tzgemm6x32},
		3: {nil, tzgemm1x48, tzgemm2x48, tzgemm3x48, tzgemm4x48, tzgemm5x48, tzgemm6x48},
		4: {nil, tzgemm1x64, tzgemm2x64, tzgemm3x64, tzgemm4x64, tzgemm5x64, tzgemm6x64},
	},
}

// kernelZA is kernelZ with A read where it is stored: A(r, k) is
// a[r*lda+k], or a[k*lda+r] when transA, for the tile's rows r and kc
// steps k. Once a step of k of its main loop it hints h's next address
// into L2 (see updateHint); with none, the tile's own C.
func kernelZA(panels, rows, kc int, a []float32, lda int, transA bool, b, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int, h hint) {
	t := 0
	if transA {
		a = a[:(kc-1)*lda+rows]
		t = 1
	} else {
		a = a[:(rows-1)*lda+kc]
	}
	b = b[:kc*panels*nr]
	c = c[:(rows-1)*ldc+cols]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, cols)
	mask := 1<<(cols-(panels-1)*nr) - 1
	if h.at == 0 {
		h = hint{at: uintptr(unsafe.Pointer(&c[0]))}
	}
	azKernels[t][panels][rows](kc, &a[0], lda, &b[0], &c[0], ldc, rowBias, colBias, flags, mask, h.at, h.stride)
	ep.tanhRows(c, ldc, rows, cols)
}

// izKernels[panels][rows] is the AVX-512 micro-kernel that reads A's rows
// from a convolution's sample (see kernelZI).
var izKernels = [zPanelsMax + 1][mr + 1]func(kc int, x *float32, koffs, poffs *int32, b, c *float32, ldc int, rowBias, colBias *float32, flags, mask int){
	1: {nil, izgemm1x16, izgemm2x16, izgemm3x16, izgemm4x16, izgemm5x16, izgemm6x16},
	2: {nil, izgemm1x32, izgemm2x32, izgemm3x32, izgemm4x32, izgemm5x32, izgemm6x32},
	3: {nil, izgemm1x48, izgemm2x48, izgemm3x48, izgemm4x48, izgemm5x48, izgemm6x48},
	4: {nil, izgemm1x64, izgemm2x64, izgemm3x64, izgemm4x64, izgemm5x64, izgemm6x64},
}

// kernelZI is kernelZ for an A whose rows are those of an im2col matrix,
// read from the sample x: A(r, k) is x[koffs[r]+poffs[k]] for the tile's
// rows r and kc steps k. The caller has checked that every offset lies in
// x.
func kernelZI(panels, rows, kc int, x []float32, koffs, poffs []int32, b, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int) {
	koffs = koffs[:rows]
	poffs = poffs[:kc]
	b = b[:kc*panels*nr]
	c = c[:(rows-1)*ldc+cols]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, cols)
	mask := 1<<(cols-(panels-1)*nr) - 1
	izKernels[panels][rows](kc, &x[0], &koffs[0], &poffs[0], &b[0], &c[0], ldc, rowBias, colBias, flags, mask)
	ep.tanhRows(c, ldc, rows, cols)
}

// kernelZ is kernelEpi for the first cols columns of panels B panels side
// by side (bufB holds them one after another), with the AVX-512 kernels;
// cols ends in the last panel, which may be partial.
func kernelZ(panels, rows, kc int, a, b, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int) {
	a = a[:kc*mr]
	b = b[:kc*panels*nr]
	c = c[:(rows-1)*ldc+cols]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, cols)
	mask := 1<<(cols-(panels-1)*nr) - 1
	zKernels[panels][rows](kc, &a[0], &b[0], &c[0], ldc, rowBias, colBias, flags, mask)
	ep.tanhRows(c, ldc, rows, cols)
}

// dKernels[rows] is the AVX2 micro-kernel, with the epilogue, that reads
// its B panel straight from a convolution's sample (see kernelD).
var dKernels = [mr + 1]func(kc int, a, x *float32, koffs, poffs *int32, c *float32, ldc int, rowBias, colBias *float32, flags, mask int){
	nil, dsgemm1x16, dsgemm2x16, dsgemm3x16, dsgemm4x16, dsgemm5x16, dsgemm6x16,
}

// kernelD is kernelEpiAsm for a panel of an im2col matrix read from the
// sample x: row k of the panel is x[koffs[k]+poff[0]:][:16]. The caller
// has checked that every row lies in x.
func kernelD(rows, kc int, a, x []float32, koffs, poff []int32, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	a = a[:kc*mr]
	koffs = koffs[:kc]
	c = c[:(rows-1)*ldc+nr]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, nr)
	dKernels[rows](kc, &a[0], &x[0], &koffs[0], &poff[0], &c[0], ldc, rowBias, colBias, flags, 0)
	ep.tanhRows(c, ldc, rows, nr)
}

// bKernels[rows] is the AVX2 micro-kernel, with the epilogue, that reads
// its B panel where B is stored (see kernelB).
var bKernels = [mr + 1]func(kc int, a, b *float32, ldb int, c *float32, ldc int, rowBias, colBias *float32, flags int){
	nil, bsgemm1x16, bsgemm2x16, bsgemm3x16, bsgemm4x16, bsgemm5x16, bsgemm6x16,
}

// kernelB is kernelEpiAsm for a whole panel of B read where it is stored:
// row k of the panel is b[k*ldb:][:16].
func kernelB(rows, kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	a = a[:kc*mr]
	b = b[:(kc-1)*ldb+nr]
	c = c[:(rows-1)*ldc+nr]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, nr)
	bKernels[rows](kc, &a[0], &b[0], ldb, &c[0], ldc, rowBias, colBias, flags)
	ep.tanhRows(c, ldc, rows, nr)
}

// tKernels[transA][rows] is the AVX2 micro-kernel that reads A where it
// is stored, its rows (ntsgemm) or its transpose's (ttsgemm), and stores
// its tile transposed (see kernelT).
var tKernels = [2][mr + 1]func(kc int, a *float32, lda int, b, c *float32, ldc int, prev, rowBias, colBias, pack *float32, flags int, hint uintptr, hintStride int){
	{nil, ntsgemm1x16, ntsgemm2x16, ntsgemm3x16, ntsgemm4x16, ntsgemm5x16, ntsgemm6x16},
	{nil, ttsgemm1x16, ttsgemm2x16, ttsgemm3x16, ttsgemm4x16, ttsgemm5x16, ttsgemm6x16},
}

// kernelT computes the rows x 16 tile A*B, A(r, k) = a[r*lda+k] (or
// a[k*lda+r] with transA) and b a packed panel, adds prev (the product of
// earlier blocks of k, 16 floats a row) unless it is nil, and stores the
// tile transposed: C[j*ldc+r] for the 16 columns j. rowTab and colTab are
// the biases laid out as transRowBias and transColBias do, or nil. Where
// pack is not nil (and colTab is), it also stores the finished tile
// untransposed, 16 floats a row, to pack: the next product's B panel
// rows (see Handoff). Once every 4 steps of k it hints the next of h's
// addresses into L2 (see ahead).
func kernelT(transA bool, rows, kc int, a []float32, lda int, b, c []float32, ldc int, prev, rowTab, colTab, pack []float32, flags int, h *ahead) {
	a = a[:inPlaceA(transA, rows, kc, lda)]
	b = b[:kc*nr]
	c = c[:(nr-1)*ldc+rows]
	var p, rowBias, colBias *float32
	if prev != nil {
		p = &prev[:rows*nr][0]
	}
	if rowTab != nil {
		rowBias = &rowTab[:transRowTab][0]
	}
	if colTab != nil {
		colBias = &colTab[:transColTab][0]
	}
	var out *float32
	if pack != nil {
		out = &pack[:rows*nr][0]
	}
	at, stride := h.call(kc)
	tKernels[b2i(transA)][rows](kc, &a[0], lda, &b[0], &c[0], ldc, p, rowBias, colBias, out, flags, at, stride)
}

// inPlaceA returns how many floats a kernel reads of an A read in place
// for rows rows and kc steps, rows lda apart or, with transA, steps.
func inPlaceA(transA bool, rows, kc, lda int) int {
	if transA {
		return (kc-1)*lda + rows
	}
	return (rows-1)*lda + kc
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nKernels[transA][rows] is the AVX2 micro-kernel, with the epilogue, that
// reads A where it is stored, its rows (nsgemm) or its transpose's
// (tsgemm).
var nKernels = [2][mr + 1]func(kc int, a *float32, lda int, b, c *float32, ldc int, rowBias, colBias *float32, flags, mask int, hint uintptr, hintStride int){
	{nil, nsgemm1x16, nsgemm2x16, nsgemm3x16, nsgemm4x16, nsgemm5x16, nsgemm6x16},
	{nil, tsgemm1x16, tsgemm2x16, tsgemm3x16, tsgemm4x16, tsgemm5x16, tsgemm6x16},
}

// kernelN is kernelEpiAsm with A read in place as kernelT reads it, with
// neither bias nor ReLU: C (+)= A*B, for a transposed product's blocks of
// k before its last. It hints h's addresses as kernelT does.
func kernelN(transA bool, rows, kc int, a []float32, lda int, b, c []float32, ldc int, acc bool, h *ahead) {
	a = a[:inPlaceA(transA, rows, kc, lda)]
	b = b[:kc*nr]
	c = c[:(rows-1)*ldc+nr]
	flags := 0
	if acc {
		flags = epiAccumulate
	}
	at, stride := h.call(kc)
	nKernels[b2i(transA)][rows](kc, &a[0], lda, &b[0], &c[0], ldc, nil, nil, flags, 0, at, stride)
}

// iKernels[rows] is the AVX2 micro-kernel, with the epilogue, that reads
// A's rows from a convolution's sample (see kernelI).
var iKernels = [mr + 1]func(kc int, x *float32, koffs, poffs *int32, b, c *float32, ldc int, rowBias, colBias *float32, flags, mask int){
	nil, isgemm1x16, isgemm2x16, isgemm3x16, isgemm4x16, isgemm5x16, isgemm6x16,
}

// kernelI is kernelEpiAsm for an A whose rows are those of an im2col
// matrix, read from the sample x: A(r, k) is x[koffs[r]+poffs[k]] for the
// tile's rows r and kc steps k. The caller has checked that every offset
// lies in x.
func kernelI(rows, kc int, x []float32, koffs, poffs []int32, b, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	koffs = koffs[:rows]
	poffs = poffs[:kc]
	b = b[:kc*nr]
	c = c[:(rows-1)*ldc+nr]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, nr)
	iKernels[rows](kc, &x[0], &koffs[0], &poffs[0], &b[0], &c[0], ldc, rowBias, colBias, flags, 0)
	ep.tanhRows(c, ldc, rows, nr)
}

// asmKernels[acc][rows] is the generated micro-kernel for rows rows.
var asmKernels = [2][mr + 1]func(kc, panels int, a, b, c *float32, ldc int, hint uintptr, hintStride int){
	{nil, sgemm1x16, sgemm2x16, sgemm3x16, sgemm4x16, sgemm5x16, sgemm6x16},
	{nil, sgemm1x16Acc, sgemm2x16Acc, sgemm3x16Acc, sgemm4x16Acc, sgemm5x16Acc, sgemm6x16Acc},
}

func kernelAsm(rows, kc, panels int, a, b, c []float32, ldc int, acc bool, h hint) {
	// The slice expressions check the bounds the assembly relies on.
	a = a[:kc*mr]
	b = b[:panels*kc*nr]
	c = c[:(rows-1)*ldc+panels*nr]
	i := 0
	if acc {
		i = 1
	}
	if h.at == 0 {
		h = hint{at: uintptr(unsafe.Pointer(&a[0]))}
	}
	asmKernels[i][rows](kc, panels, &a[0], &b[0], &c[0], ldc, h.at, h.stride)
}

// asmEpiKernels[rows] is the generated micro-kernel with the epilogue for
// rows rows.
var asmEpiKernels = [mr + 1]func(kc int, a, b, c *float32, ldc int, rowBias, colBias *float32, flags int){
	nil, sgemm1x16Epi, sgemm2x16Epi, sgemm3x16Epi, sgemm4x16Epi, sgemm5x16Epi, sgemm6x16Epi,
}

func kernelEpiAsm(rows, kc int, a, b, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	a = a[:kc*mr]
	b = b[:kc*nr]
	c = c[:(rows-1)*ldc+nr]
	rowBias, colBias, flags := epiArgs(ep, acc, i, j, rows, nr)
	asmEpiKernels[rows](kc, &a[0], &b[0], &c[0], ldc, rowBias, colBias, flags)
	ep.tanhRows(c, ldc, rows, nr)
}

// epiArgs returns the epilogue arguments of a kernel call on the rows x cols
// tile at row i, column j of C: the biases where it starts (nil where ep
// has none, or ep is nil) and the flags. The kernels it serves leave a
// tanh to the caller (see tanhRows).
func epiArgs(ep *Epilogue, acc bool, i, j, rows, cols int) (rowBias, colBias *float32, flags int) {
	if acc {
		flags |= epiAccumulate
	}
	if ep == nil {
		return nil, nil, flags
	}
	if ep.RowBias != nil {
		rowBias = &ep.RowBias[i:][:rows][0]
	}
	if ep.ColBias != nil {
		colBias = &ep.ColBias[j:][:cols][0]
	}
	if ep.ReLU {
		flags |= epiReLU
	}
	return rowBias, colBias, flags
}

// pKernels[rows] is the AVX2 micro-kernel that reads A from a weight
// stored as column panels (see kernelP).
var pKernels = [mr + 1]func(kc int, a *float32, lda int, b, c *float32, ldc int, rowBias, colBias *float32, flags, mask int){
	nil, psgemm1x16, psgemm2x16, psgemm3x16, psgemm4x16, psgemm5x16, psgemm6x16,
}

// kernelP is kernelN for A a weight stored as column panels, stride floats
// apart: A(r, k) = a[(k/16)*stride+r*16+k%16] for the tile's rows r and kc
// steps k, kc a multiple of 16.
func kernelP(rows, kc int, a []float32, stride int, b, c []float32, ldc int, acc bool) {
	a = a[:(kc/16-1)*stride+rows*16]
	b = b[:kc*nr]
	c = c[:(rows-1)*ldc+nr]
	flags := 0
	if acc {
		flags = epiAccumulate
	}
	pKernels[rows](kc, &a[0], stride, &b[0], &c[0], ldc, nil, nil, flags, 0)
}

// downKernels[rows] is the AVX2 micro-kernel that runs down a column of
// tiles (see kernelDown).
var downKernels = [mr + 1]func(kc, panels int, a, b, c *float32, ldc int, hint uintptr, hintStride int){
	nil, sgemm1x16Down, sgemm2x16Down, sgemm3x16Down, sgemm4x16Down, sgemm5x16Down, sgemm6x16Down,
}

// kernelDown sets the tiles of C's rows [6t, 6t+rows) for t < tiles, each
// the product of A panel t (packed, kc steps of 6 floats, the panels one
// after another) and the B panel b, rows of C ldc floats apart. Once a
// trip of its main loop it hints h's next address into L2; with none, C.
func kernelDown(rows, kc, tiles int, a, b, c []float32, ldc int, h hint) {
	a = a[:tiles*kc*mr]
	b = b[:kc*nr]
	c = c[:((tiles-1)*mr+rows-1)*ldc+nr]
	if h.at == 0 {
		h = hint{at: uintptr(unsafe.Pointer(&c[0]))}
	}
	downKernels[rows](kc, tiles, &a[0], &b[0], &c[0], ldc, h.at, h.stride)
}

// gemvpKernels[rows] is the AVX2 matrix-vector kernel over whole column
// panels (see gemvPanels).
var gemvpKernels = [5]func(k int, a *float32, stride int, x, y *float32){nil, gemvp1, gemvp2, gemvp3, gemvp4}

// gemvPanels sets y[r] = sum over p < k of A(r, p)*x[p] for rows r < rows
// (at most 4) of a weight stored as column panels, stride floats apart:
// A(r, p) = a[(p/16)*stride+r*16+p%16], k a multiple of 16.
func gemvPanels(rows, k int, a []float32, stride int, x, y []float32) {
	if k == 0 {
		clear(y[:rows])
		return
	}
	a = a[:(k/16-1)*stride+rows*16]
	x = x[:k]
	y = y[:rows]
	gemvpKernels[rows](k, &a[0], stride, &x[0], &y[0])
}
