package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Vec adds the vector helpers that CNN kernels use around GEMM to ctx:
//
//	axpy(alpha, x, y)        y[i] += alpha*x[i]
//	relu(x)                  x[i] = max(x[i], 0)
//	addScalar(x, s)          x[i] += s           (bias of one output row)
//	addScalarReLU(x, s)      x[i] = max(x[i]+s, 0)
//	addVec(x, v)             x[i] += v[i]        (bias along a row)
//	addVecReLU(x, v)         x[i] = max(x[i]+v[i], 0)
//	scaleShiftReLU(y, x, a, b) y[i] = max(x[i]*a + 0 + b, 0)  (batch-norm's affine map)
//	copyRows(dst, src, ...)  rows of width floats, strided (im2col, padding)
//	copyRowsZ(dst, src, ...) copyRows with AVX-512 and masks
//	maxPool2x2(dst, src, ...) 2x2 max pooling with stride 2 of a plane
//	addRows(dst, src, ...)   strided rows added into strided rows (col2im)
//
// All run over i < len(x); the Go callers check the other lengths. The ReLU
// keeps NaN and -0 as they are, as "if x < 0 { x = 0 }" does.
func Vec(ctx *build.Context) {
	axpy(ctx)
	unary(ctx, "relu", false, false)
	unary(ctx, "addScalar", true, false)
	unary(ctx, "addScalarReLU", true, true)
	binary(ctx, "addVec", false)
	binary(ctx, "addVecReLU", true)
	scaleShiftReLU(ctx)
	copyRows(ctx)
	copyRowsZ(ctx)
	addRows(ctx)
	table := poolMaskTable(ctx)
	maxPool2x2(ctx, table)
	maxPool2x2Backward(ctx, table, false)
	maxPool2x2Backward(ctx, table, true)
}

// Registers of the streaming loops.
var (
	vx  = reg.RSI // x
	vy  = reg.RDI // second operand
	vn  = reg.RCX // elements left
	tmp = []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3}
	yc  = reg.Y14 // broadcast constant (alpha, s)
	yz  = reg.Y15 // zero
)

// stream emits a loop over n floats, 32 per trip, then 8, then one. body
// handles the element(s) at byte offset off: a YMM of 8 floats, or the low
// float of an XMM when scalar is set.
func stream(ctx *build.Context, name string, ptrs []reg.GPPhysical, body func(v reg.VecPhysical, off int, scalar bool)) {
	blocks := []struct {
		n     int
		label string
	}{{32, "x32"}, {8, "x8"}, {1, "x1"}}
	for bi, bl := range blocks {
		loop, next := name+bl.label, name+"done"
		if bi+1 < len(blocks) {
			next = name + blocks[bi+1].label
		}
		ctx.Label(loop)
		ctx.CMPQ(vn, operand.U8(bl.n))
		ctx.JL(operand.LabelRef(next))
		if bl.n == 1 {
			body(tmp[0].AsX().(reg.VecPhysical), 0, true)
		} else {
			for j := 0; j < bl.n/8; j++ {
				body(tmp[j], 32*j, false)
			}
		}
		for _, p := range ptrs {
			ctx.ADDQ(operand.U8(4*bl.n), p)
		}
		ctx.SUBQ(operand.U8(bl.n), vn)
		ctx.JMP(operand.LabelRef(loop))
	}
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}

func axpy(ctx *build.Context) {
	ctx.Function("axpy")
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(alpha float32, x, y []float32)")
	ctx.Pragma("noescape")
	ctx.Doc("axpy sets y[i] += alpha*x[i] for i < len(x); y must be at least as long.")
	ctx.Load(ctx.Param("x").Base(), vx)
	ctx.Load(ctx.Param("x").Len(), vn)
	ctx.Load(ctx.Param("y").Base(), vy)
	ctx.VBROADCASTSS(paramAddr(ctx, "alpha"), yc)
	stream(ctx, "axpy", []reg.GPPhysical{vx, vy}, func(v reg.VecPhysical, off int, scalar bool) {
		x, y := operand.Mem{Base: vx, Disp: off}, operand.Mem{Base: vy, Disp: off}
		if scalar {
			ctx.VMOVSS(y, v)
			ctx.VFMADD231SS(x, yc.AsX(), v)
			ctx.VMOVSS(v, y)
			return
		}
		ctx.VMOVUPS(y, v)
		ctx.VFMADD231PS(x, yc, v)
		ctx.VMOVUPS(v, y)
	})
}

// maxZero emits v = max(v, 0), returning v itself when it is NaN.
func maxZero(ctx *build.Context, v reg.VecPhysical, scalar bool) {
	if scalar {
		ctx.VMAXSS(v, yz.AsX(), v)
		return
	}
	ctx.VMAXPS(v, yz, v)
}

// unary emits name(x []float32[, s float32]): x[i] (+ s), then ReLU if relu.
func unary(ctx *build.Context, name string, add, relu bool) {
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	switch {
	case add && relu:
		ctx.SignatureExpr("func(x []float32, s float32)")
		ctx.Doc(name + " sets x[i] = max(x[i]+s, 0).")
	case add:
		ctx.SignatureExpr("func(x []float32, s float32)")
		ctx.Doc(name + " sets x[i] += s.")
	default:
		ctx.SignatureExpr("func(x []float32)")
		ctx.Doc(name + " sets x[i] = max(x[i], 0).")
	}
	ctx.Pragma("noescape")
	ctx.Load(ctx.Param("x").Base(), vx)
	ctx.Load(ctx.Param("x").Len(), vn)
	if add {
		ctx.VBROADCASTSS(paramAddr(ctx, "s"), yc)
	}
	if relu {
		ctx.VXORPS(yz, yz, yz)
	}
	stream(ctx, name, []reg.GPPhysical{vx}, func(v reg.VecPhysical, off int, scalar bool) {
		x := operand.Mem{Base: vx, Disp: off}
		switch {
		case scalar && add:
			ctx.VMOVSS(x, v)
			ctx.VADDSS(yc.AsX(), v, v)
		case scalar:
			ctx.VMOVSS(x, v)
		case add:
			ctx.VADDPS(x, yc, v)
		default:
			ctx.VMOVUPS(x, v)
		}
		if relu || !add {
			maxZero(ctx, v, scalar)
		}
		if scalar {
			ctx.VMOVSS(v, x)
		} else {
			ctx.VMOVUPS(v, x)
		}
	})
}

// scaleShiftReLU emits scaleShiftReLU(y, x []float32, a, b float32):
// y[i] = max((x[i]*a + 0) + b, 0), one rounding per operation. The + 0
// turns a product of -0 into +0, so the result has the bits of Axpy into a
// cleared y followed by AddScalarReLU, the passes it replaces.
func scaleShiftReLU(ctx *build.Context) {
	const name = "scaleShiftReLU"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(y, x []float32, a, b float32)")
	ctx.Pragma("noescape")
	ctx.Doc(name + " sets y[i] = max((x[i]*a + 0) + b, 0) for i < len(y); x must be at least as long.")
	yb := reg.Y13
	ctx.Load(ctx.Param("y").Base(), vy)
	ctx.Load(ctx.Param("y").Len(), vn)
	ctx.Load(ctx.Param("x").Base(), vx)
	ctx.VBROADCASTSS(paramAddr(ctx, "a"), yc)
	ctx.VBROADCASTSS(paramAddr(ctx, "b"), yb)
	ctx.VXORPS(yz, yz, yz)
	stream(ctx, name, []reg.GPPhysical{vx, vy}, func(v reg.VecPhysical, off int, scalar bool) {
		x, y := operand.Mem{Base: vx, Disp: off}, operand.Mem{Base: vy, Disp: off}
		if scalar {
			ctx.VMOVSS(x, v)
			ctx.VMULSS(yc.AsX(), v, v)
			ctx.VADDSS(yz.AsX(), v, v)
			ctx.VADDSS(yb.AsX(), v, v)
		} else {
			ctx.VMULPS(x, yc, v)
			ctx.VADDPS(yz, v, v)
			ctx.VADDPS(yb, v, v)
		}
		maxZero(ctx, v, scalar)
		if scalar {
			ctx.VMOVSS(v, y)
		} else {
			ctx.VMOVUPS(v, y)
		}
	})
}

// binary emits name(x, v []float32): x[i] += v[i], then ReLU if relu.
func binary(ctx *build.Context, name string, relu bool) {
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(x, v []float32)")
	if relu {
		ctx.Doc(name + " sets x[i] = max(x[i]+v[i], 0) for i < len(x); v must be at least as long.")
	} else {
		ctx.Doc(name + " sets x[i] += v[i] for i < len(x); v must be at least as long.")
	}
	ctx.Pragma("noescape")
	ctx.Load(ctx.Param("x").Base(), vx)
	ctx.Load(ctx.Param("x").Len(), vn)
	ctx.Load(ctx.Param("v").Base(), vy)
	if relu {
		ctx.VXORPS(yz, yz, yz)
	}
	stream(ctx, name, []reg.GPPhysical{vx, vy}, func(v reg.VecPhysical, off int, scalar bool) {
		x, y := operand.Mem{Base: vx, Disp: off}, operand.Mem{Base: vy, Disp: off}
		if scalar {
			ctx.VMOVSS(x, v)
			ctx.VADDSS(y, v, v)
		} else {
			ctx.VMOVUPS(x, v)
			ctx.VADDPS(y, v, v)
		}
		if relu {
			maxZero(ctx, v, scalar)
		}
		if scalar {
			ctx.VMOVSS(v, x)
		} else {
			ctx.VMOVUPS(v, x)
		}
	})
}

// copyRows emits copyRows(dst, src *float32, rows, width, dstStride,
// srcStride int): row r of width floats at src + r*srcStride goes to
// dst + r*dstStride. A row of at least 8 floats moves in YMMs, the last
// one overlapping the one before; a shorter row moves float by float.
// The rows must not overlap.
func copyRows(ctx *build.Context) {
	rowKernel(ctx, "copyRows", false, "copyRows copies rows rows of width floats from src, srcStride floats apart,",
		"to dst, dstStride floats apart.")
}

// copyRowsZ emits copyRowsZ, copyRows with AVX-512: a row moves 16 floats
// at a time and its last width%16 through a mask, with no branch on the
// width inside the row; short rows, such as a small convolution's output
// rows, cost a few instructions each.
func copyRowsZ(ctx *build.Context) {
	const name = "copyRowsZ"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, src *float32, rows, width, dstStride, srcStride int)")
	ctx.Pragma("noescape")
	ctx.Doc(name+" copies rows rows of width floats from src, srcStride floats apart,",
		"to dst, dstStride floats apart, with AVX-512F.")
	dst, src, rows, full := reg.RDI, reg.RSI, reg.RCX, reg.RDX
	ds, ss, n, off := reg.R8, reg.R9, reg.R10, reg.R11
	ctx.Load(ctx.Param("dst"), dst)
	ctx.Load(ctx.Param("src"), src)
	ctx.Load(ctx.Param("rows"), rows)
	ctx.Load(ctx.Param("width"), full)
	ctx.Load(ctx.Param("dstStride"), ds)
	ctx.Load(ctx.Param("srcStride"), ss)
	ctx.SHLQ(operand.U8(2), ds)
	ctx.SHLQ(operand.U8(2), ss)
	// K1 selects the last width%16 floats; full counts the 16-float chunks.
	tailMask(ctx, full)
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + s) }
	at := func(base reg.Register) operand.Mem { return operand.Mem{Base: base, Index: off, Scale: 1} }
	ctx.TESTQ(rows, rows)
	ctx.JZ(lbl("done"))
	ctx.Label(name + "row")
	ctx.XORQ(off, off)
	ctx.MOVQ(full, n)
	ctx.TESTQ(n, n)
	ctx.JZ(lbl("tail"))
	ctx.Label(name + "x16")
	ctx.VMOVUPS(at(src), reg.Z0)
	ctx.VMOVUPS(reg.Z0, at(dst))
	ctx.ADDQ(operand.U8(64), off)
	ctx.DECQ(n)
	ctx.JNZ(lbl("x16"))
	ctx.Label(name + "tail")
	ctx.VMOVUPS_Z(at(src), reg.K1, reg.Z0)
	ctx.VMOVUPS(reg.Z0, reg.K1, at(dst))
	ctx.ADDQ(ds, dst)
	ctx.ADDQ(ss, src)
	ctx.DECQ(rows)
	ctx.JNZ(lbl("row"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}

// tailMask sets K1 to the last n%16 lanes of a row of n floats and n to
// its whole 16-float chunks, n/16, clobbering AX and BX.
func tailMask(ctx *build.Context, n reg.GPPhysical) {
	ctx.MOVQ(n, reg.RAX)
	ctx.ANDQ(operand.U8(15), reg.RAX)
	ctx.MOVQ(reg.RAX, reg.RBX)
	ctx.MOVL(operand.U32(1), reg.EAX)
	ctx.SHLXL(reg.EBX, reg.EAX, reg.EAX)
	ctx.DECL(reg.EAX)
	ctx.KMOVW(reg.EAX, reg.K1)
	ctx.SHRQ(operand.U8(4), n)
}

// addRows emits addRows(dst, src *float32, rows, width, dstStride,
// srcStride int): row r of width floats at src + r*srcStride is added to
// the one at dst + r*dstStride, eight floats at a time and the rest one
// by one. The rows must not overlap.
func addRows(ctx *build.Context) {
	rowKernel(ctx, "addRows", true, "addRows adds rows rows of width floats from src, srcStride floats apart,",
		"to those of dst, dstStride floats apart.")
}

// rowKernel emits copyRows or, with add, addRows.
func rowKernel(ctx *build.Context, name string, add bool, doc ...string) {
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, src *float32, rows, width, dstStride, srcStride int)")
	ctx.Pragma("noescape")
	ctx.Doc(doc...)
	dst, src, rows, width := reg.RDI, reg.RSI, reg.RCX, reg.RDX
	ds, ss, last, full, off := reg.R8, reg.R9, reg.R10, reg.R11, reg.R12
	ctx.Load(ctx.Param("dst"), dst)
	ctx.Load(ctx.Param("src"), src)
	ctx.Load(ctx.Param("rows"), rows)
	ctx.Load(ctx.Param("width"), width)
	ctx.Load(ctx.Param("dstStride"), ds)
	ctx.Load(ctx.Param("srcStride"), ss)
	ctx.SHLQ(operand.U8(2), ds)
	ctx.SHLQ(operand.U8(2), ss)
	// full: the bytes of the whole 8-float chunks; last: the offset of
	// a copy's final, overlapping chunk.
	ctx.MOVQ(width, full)
	ctx.ANDQ(operand.I32(-8), full)
	ctx.SHLQ(operand.U8(2), full)
	ctx.LEAQ(operand.Mem{Base: width, Scale: 1, Disp: -8}, last)
	ctx.SHLQ(operand.U8(2), last)
	ctx.SHLQ(operand.U8(2), width) // now bytes
	v := reg.Y0
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + s) }
	at := func(base reg.Register, i reg.Register) operand.Mem {
		return operand.Mem{Base: base, Index: i, Scale: 1}
	}
	// move moves (or adds) the chunk at byte offset i, a YMM or, with
	// scalar, one float.
	move := func(i reg.Register, scalar bool) {
		x := reg.VecPhysical(v)
		if scalar {
			x = v.AsX().(reg.VecPhysical)
		}
		switch {
		case scalar && add:
			ctx.VMOVSS(at(dst, i), x)
			ctx.VADDSS(at(src, i), x, x)
		case scalar:
			ctx.VMOVSS(at(src, i), x)
		case add:
			ctx.VMOVUPS(at(dst, i), x)
			ctx.VADDPS(at(src, i), x, x)
		default:
			ctx.VMOVUPS(at(src, i), x)
		}
		if scalar {
			ctx.VMOVSS(x, at(dst, i))
		} else {
			ctx.VMOVUPS(x, at(dst, i))
		}
	}
	ctx.Label(name + "row")
	ctx.TESTQ(rows, rows)
	ctx.JZ(lbl("done"))
	ctx.XORQ(off, off)
	if !add {
		ctx.CMPQ(width, operand.U8(32))
		ctx.JL(lbl("x1"))
	}
	ctx.Label(name + "x8")
	ctx.CMPQ(off, full)
	ctx.JGE(lbl("tail"))
	move(off, false)
	ctx.ADDQ(operand.U8(32), off)
	ctx.JMP(lbl("x8"))
	ctx.Label(name + "tail")
	if !add {
		// The last eight floats again: a copy may overlap itself.
		move(last, false)
		ctx.JMP(lbl("next"))
	}
	ctx.Label(name + "x1")
	ctx.CMPQ(off, width)
	ctx.JGE(lbl("next"))
	move(off, true)
	ctx.ADDQ(operand.U8(4), off)
	ctx.JMP(lbl("x1"))
	ctx.Label(name + "next")
	ctx.ADDQ(ds, dst)
	ctx.ADDQ(ss, src)
	ctx.DECQ(rows)
	ctx.JMP(lbl("row"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}

// maxPool2x2 emits maxPool2x2(dst, src *float32, oh, ow, w int): dst[i*ow
// + j] is the largest of src[2i*w + 2j], src[2i*w + 2j+1] and the two
// below them, a NaN if any of them is one, for i < oh and j < ow. Eight
// outputs are computed at a time, the last eight of a row overlapping the
// ones before; a row narrower than eight is one chunk (see poolRows).
func maxPool2x2(ctx *build.Context, table operand.Mem) {
	ctx.Function("maxPool2x2")
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, src *float32, oh, ow, w int)")
	ctx.Pragma("noescape")
	ctx.Doc("maxPool2x2 pools each 2x2 window of the oh x 2ow top-left part of the",
		"plane src (rows w floats apart) into dst (rows ow floats apart);",
		"a window with a NaN gives a NaN. ow must be at least 1.")
	dst, src, oh, ow, w := reg.RDI, reg.RSI, reg.RCX, reg.RDX, reg.R8
	r1, j, last := reg.R9, reg.R10, reg.R11
	ctx.Load(ctx.Param("dst"), dst)
	ctx.Load(ctx.Param("src"), src)
	ctx.Load(ctx.Param("oh"), oh)
	ctx.Load(ctx.Param("ow"), ow)
	ctx.Load(ctx.Param("w"), w)
	ctx.SHLQ(operand.U8(2), w) // bytes
	// last: the output offset, in floats, of a row's final eight.
	ctx.LEAQ(operand.Mem{Base: ow, Disp: -8}, last)
	y := ymms(0, 1, 2, 3, 4, 5, 6, 7)
	// maxNaN sets a = max(a, b), all ones (a NaN) where either is a NaN.
	maxNaN := func(a, b, t reg.VecPhysical) {
		ctx.VCMPPS(operand.U8(3), b, a, t) // unordered
		ctx.VMAXPS(b, a, a)
		ctx.VORPS(t, a, a)
	}
	m := poolMasks{table: table, out: reg.Y8, lo: reg.Y9, hi: reg.Y10}
	// eight pools outputs j..j+7 of the row (j in floats), or as mode
	// says the first ow of them.
	eight := func(mode poolChunk) {
		m.load(ctx, mode, operand.Mem{Base: src, Index: j, Scale: 8}, y[0], m.lo)
		m.load(ctx, mode, operand.Mem{Base: src, Index: j, Scale: 8, Disp: 32}, y[1], m.hi)
		m.load(ctx, mode, operand.Mem{Base: r1, Index: j, Scale: 8}, y[2], m.lo)
		m.load(ctx, mode, operand.Mem{Base: r1, Index: j, Scale: 8, Disp: 32}, y[3], m.hi)
		maxNaN(y[0], y[2], y[6]) // the two rows
		maxNaN(y[1], y[3], y[7])
		ctx.VPERMILPS(operand.U8(0xB1), y[0], y[4]) // neighbours swapped
		ctx.VPERMILPS(operand.U8(0xB1), y[1], y[5])
		maxNaN(y[0], y[4], y[6]) // each pair's maximum, twice
		maxNaN(y[1], y[5], y[7])
		// Even elements of y0 then y1, per 128-bit lane, then the lanes
		// in order.
		ctx.VSHUFPS(operand.U8(0x88), y[1], y[0], y[2])
		ctx.VPERMPD(operand.U8(0xD8), y[2], y[2])
		m.store(ctx, mode, y[2], operand.Mem{Base: dst, Index: j, Scale: 4}, m.out)
	}
	poolRows(ctx, "pool", oh, ow, w, j, last, m, eight, func() {
		ctx.LEAQ(operand.Mem{Base: src, Index: w, Scale: 1}, r1)
	}, func() {
		ctx.LEAQ(operand.Mem{Base: dst, Index: ow, Scale: 4}, dst)
		ctx.LEAQ(operand.Mem{Base: r1, Index: w, Scale: 1}, src)
	})
}

// poolRows emits the row loop of the 2x2 pooling kernels: for each of oh
// output rows, start, then eight at j = 0, 8, ... below last and once more
// at j = last (the row's final eight, overlapping the ones before), then
// next, which moves the pointers two input rows down; then VZEROUPPER and
// RET. Where ow is under 8, each row is instead one chunk at j = 0: a
// chunkSpill where ow is at least 4 and the input rows are 2*ow floats (w
// bytes) long, so that what a row writes past its end lands on the next
// row, which is written after; a chunkMasked for the last row and
// elsewhere.
func poolRows(ctx *build.Context, prefix string, oh, ow, w, j, last reg.GPPhysical, m poolMasks, eight func(poolChunk), start, next func()) {
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(prefix + s) }
	ctx.CMPQ(ow, operand.U8(8))
	ctx.JL(lbl("small"))
	ctx.Label(prefix + "row")
	ctx.TESTQ(oh, oh)
	ctx.JZ(lbl("done"))
	start()
	ctx.XORQ(j, j)
	ctx.Label(prefix + "x8")
	ctx.CMPQ(j, last)
	ctx.JGE(lbl("tail"))
	eight(chunkWhole)
	ctx.ADDQ(operand.U8(8), j)
	ctx.JMP(lbl("x8"))
	ctx.Label(prefix + "tail")
	ctx.MOVQ(last, j)
	eight(chunkWhole)
	next()
	ctx.DECQ(oh)
	ctx.JMP(lbl("row"))
	ctx.Label(prefix + "small")
	m.set(ctx, ow)
	ctx.XORQ(j, j)
	ctx.CMPQ(ow, operand.U8(4)) // a narrower row's spill reaches past the next
	ctx.JL(lbl("smallrow"))
	ctx.MOVQ(ow, reg.RAX) // 2*ow floats in bytes
	ctx.SHLQ(operand.U8(3), reg.RAX)
	ctx.CMPQ(reg.RAX, w)
	ctx.JNE(lbl("smallrow"))
	// rows emits the loop named loop: one chunk of mode per row while
	// more than least rows are left, then on to exit.
	rows := func(loop string, least uint8, exit string, mode poolChunk) {
		ctx.Label(prefix + loop)
		ctx.CMPQ(oh, operand.U8(least))
		ctx.JLE(lbl(exit))
		start()
		eight(mode)
		next()
		ctx.DECQ(oh)
		ctx.JMP(lbl(loop))
	}
	rows("spillrow", 1, "smallrow", chunkSpill)
	rows("smallrow", 0, "done", chunkMasked)
	ctx.Label(prefix + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}

// A poolChunk says how a pooling kernel reads and writes a chunk of eight
// outputs.
type poolChunk uint8

const (
	chunkWhole  poolChunk = iota // every lane
	chunkMasked                  // the lanes of the row, through poolMasks
	chunkSpill                   // masked reads; whole writes, past the row's end
)

// poolMasks are the lane masks of a pooling row narrower than eight
// outputs, read from table (see poolMaskTable): out holds its ow outputs,
// lo and hi the first and second eight of the 2*ow floats of each of its
// two input rows.
type poolMasks struct {
	table       operand.Mem
	out, lo, hi reg.VecPhysical
}

// poolMaskTable adds poolmask, the static data of poolMasks: sixteen
// lanes set, then sixteen clear, so that the 8 floats at lane 16-n have
// their first n lanes set, all eight for n >= 8, none for n <= 0.
func poolMaskTable(ctx *build.Context) operand.Mem {
	table := ctx.StaticGlobal("poolmask")
	ctx.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := range 32 {
		v := uint32(0)
		if i < 16 {
			v = 0xffffffff
		}
		ctx.AppendDatum(operand.U32(v))
	}
	return table
}

// set loads the masks for ow (1 to 7) outputs, clobbering AX and R13.
func (m poolMasks) set(ctx *build.Context, ow reg.GPPhysical) {
	base, at := reg.R13, reg.RAX
	lanes := func(dst reg.VecPhysical) {
		ctx.VMOVDQU(operand.Mem{Base: base, Index: at, Scale: 4}, dst)
	}
	ctx.LEAQ(m.table, base)
	ctx.MOVQ(operand.U32(16), at) // n = ow
	ctx.SUBQ(ow, at)
	lanes(m.out)
	ctx.SUBQ(ow, at) // n = 2ow
	lanes(m.lo)
	ctx.ADDQ(operand.U8(8), at) // n = 2ow-8
	lanes(m.hi)
}

// load loads 8 floats at src into dst: only the lanes of mask (the
// others 0) unless mode is chunkWhole.
func (poolMasks) load(ctx *build.Context, mode poolChunk, src operand.Mem, dst, mask reg.VecPhysical) {
	if mode == chunkWhole {
		ctx.VMOVUPS(src, dst)
	} else {
		ctx.VMASKMOVPS(src, mask, dst)
	}
}

// store stores src's 8 floats at dst: only the lanes of mask when mode
// is chunkMasked. A masked store is several times slower than a whole one
// on Zen 3.
func (poolMasks) store(ctx *build.Context, mode poolChunk, src reg.VecPhysical, dst operand.Mem, mask reg.VecPhysical) {
	if mode == chunkMasked {
		ctx.VMASKMOVPS(src, mask, dst)
	} else {
		ctx.VMOVUPS(src, dst)
	}
}

func maxPool2x2Backward(ctx *build.Context, table operand.Mem, relu bool) {
	name, also := "maxPool2x2Backward", ""
	if relu {
		name, also = "maxPool2x2ReLUBackward", " Then 0 where x's bits are not above 0 as an int32."
	}
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dx, x, dy *float32, oh, ow, w int)")
	ctx.Pragma("noescape")
	ctx.Doc(name+" sets the gradient of each 2x2 window of the oh x 2ow",
		"top-left part of the plane x (rows w floats apart, as dx) from dy (rows",
		"ow floats apart): dy on the first of the window's four elements, in",
		"row-major order, equal to its maximum, on the last where a NaN makes",
		"none equal, and 0 on the others."+also+" ow must be at least 1.")
	dx, x, dy, oh, ow, w := reg.RDI, reg.RSI, reg.RBX, reg.RCX, reg.RDX, reg.R8
	x1, d1, j, last := reg.R9, reg.R12, reg.R10, reg.R11
	ctx.Load(ctx.Param("dx"), dx)
	ctx.Load(ctx.Param("x"), x)
	ctx.Load(ctx.Param("dy"), dy)
	ctx.Load(ctx.Param("oh"), oh)
	ctx.Load(ctx.Param("ow"), ow)
	ctx.Load(ctx.Param("w"), w)
	ctx.SHLQ(operand.U8(2), w) // bytes
	ctx.LEAQ(operand.Mem{Base: ow, Disp: -8}, last)
	y := ymms(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
	odd, even := reg.Y14, reg.Y15
	// odd: all ones in the odd lanes; even: in the even ones.
	ctx.VPCMPEQD(even, even, even)
	ctx.VXORPS(odd, odd, odd)
	ctx.VBLENDPS(operand.U8(0xAA), even, odd, odd)
	ctx.VXORPS(odd, even, even)
	zero := y[10]
	// passed keeps the lanes of v where a ReLU passed the gradient, where
	// r's bits are above 0 as an int32 (as elem.ReLUBackward tests).
	passed := func(r, v, t reg.VecPhysical) {
		if relu {
			ctx.VPCMPGTD(zero, r, t)
			ctx.VANDPS(t, v, v)
		}
	}
	if relu {
		ctx.VPXOR(zero, zero, zero)
	}
	maxNaN := func(a, b, t reg.VecPhysical) {
		ctx.VCMPPS(operand.U8(3), b, a, t) // unordered
		ctx.VMAXPS(b, a, a)
		ctx.VORPS(t, a, a)
	}
	pm := poolMasks{table: table, out: y[11], lo: y[12], hi: y[13]}
	// half does the windows of 8 floats of each row at byte offset off;
	// g holds their gradients, each twice. It stores row 0's and leaves
	// row 1's in y4, which row1 stores, so that a chunkSpill writes the
	// rows in order. The chunk's mode says how it reads and writes, mask
	// what it masks.
	half := func(off int, g reg.VecPhysical, mode poolChunk, mask reg.VecPhysical) {
		r0, r1, m, e0, e1, p, t := y[0], y[1], y[2], y[3], y[4], y[5], y[6]
		pm.load(ctx, mode, operand.Mem{Base: x, Index: j, Scale: 8, Disp: off}, r0, mask)
		pm.load(ctx, mode, operand.Mem{Base: x1, Index: j, Scale: 8, Disp: off}, r1, mask)
		ctx.VMOVAPS(r0, m)
		maxNaN(m, r1, t)                      // each column's maximum
		ctx.VPERMILPS(operand.U8(0xB1), m, p) // its neighbour's
		maxNaN(m, p, t)                       // each window's, twice
		ctx.VCMPPS(operand.U8(0), m, r0, e0)  // r0 == m: a (even), b (odd)
		ctx.VCMPPS(operand.U8(0), m, r1, e1)  // r1 == m: c, d
		// Row 0: a where a is the maximum; b where b is and a is not.
		ctx.VPERMILPS(operand.U8(0xB1), e0, p) // a's test in b's lane and b's in a's
		ctx.VORPS(p, e0, t)                    // a or b, in both lanes
		ctx.VANDPS(odd, p, p)
		ctx.VANDNPS(e0, p, p) // e0 &^ (odd & swapped)
		ctx.VANDPS(g, p, p)
		passed(r0, p, m)
		pm.store(ctx, mode, p, operand.Mem{Base: dx, Index: j, Scale: 8, Disp: off}, mask)
		// Row 1: c where c is and neither a nor b; d where none of a, b, c.
		ctx.VPERMILPS(operand.U8(0xB1), e1, p) // c's test in d's lane
		ctx.VANDNPS(e1, t, e1)                 // c and not (a or b)
		ctx.VANDPS(even, e1, e1)
		ctx.VORPS(t, p, p)
		ctx.VANDNPS(odd, p, p) // odd &^ (a or b or c)
		ctx.VORPS(p, e1, e1)
		ctx.VANDPS(g, e1, e1)
		passed(r1, e1, m)
	}
	row1 := func(v reg.VecPhysical, off int, mode poolChunk, mask reg.VecPhysical) {
		pm.store(ctx, mode, v, operand.Mem{Base: d1, Index: j, Scale: 8, Disp: off}, mask)
	}
	eight := func(mode poolChunk) {
		g, lo, hi := y[7], y[8], y[9]
		pm.load(ctx, mode, operand.Mem{Base: dy, Index: j, Scale: 4}, g, pm.out)
		ctx.VUNPCKLPS(g, g, lo) // g0 g0 g1 g1 | g4 g4 g5 g5
		ctx.VUNPCKHPS(g, g, hi) // g2 g2 g3 g3 | g6 g6 g7 g7
		ctx.VPERM2F128(operand.U8(0x20), hi, lo, g)
		ctx.VPERM2F128(operand.U8(0x31), hi, lo, hi)
		half(0, g, mode, pm.lo)
		ctx.VMOVAPS(y[4], lo) // row 1's first half, stored after row 0's second
		half(32, hi, mode, pm.hi)
		row1(lo, 0, mode, pm.lo)
		row1(y[4], 32, mode, pm.hi)
	}
	poolRows(ctx, "poolbwd", oh, ow, w, j, last, pm, eight, func() {
		ctx.LEAQ(operand.Mem{Base: x, Index: w, Scale: 1}, x1)
		ctx.LEAQ(operand.Mem{Base: dx, Index: w, Scale: 1}, d1)
	}, func() {
		ctx.LEAQ(operand.Mem{Base: dy, Index: ow, Scale: 4}, dy)
		ctx.LEAQ(operand.Mem{Base: x1, Index: w, Scale: 1}, x)
		ctx.LEAQ(operand.Mem{Base: d1, Index: w, Scale: 1}, dx)
	})
}

// paramAddr returns the stack address of a scalar parameter, so that it can
// be broadcast straight from memory.
func paramAddr(ctx *build.Context, name string) operand.Mem {
	b, err := ctx.Param(name).Resolve()
	if err != nil {
		panic(err) // the signatures above are fixed; a miss is a bug here
	}
	return b.Addr
}

// Gemv adds the matrix-vector kernels gemv1..gemv4 to ctx:
//
//	gemvR(k, a, lda, x, y)   y[r] = sum over p < k of a[r*lda+p]*x[p], r < R
//
// Each row keeps two YMM accumulators (eight independent FMA chains for
// four rows), so the loop runs at the FMA units' throughput; the rows share
// every load of x. A batch-1 linear layer is this product: a GEMM would
// first copy the whole weight into packed panels to use one row of them.
func Gemv(ctx *build.Context) {
	for rows := 4; rows >= 1; rows-- {
		gemv(ctx, rows)
		gemvPanels(ctx, rows)
	}
}

// gemvPanels emits gemvp<rows>: gemv for a weight stored as column panels
// (runtime.PanelIndex), over its whole panels.
func gemvPanels(ctx *build.Context, rows int) {
	name := fmt.Sprintf("gemvp%d", rows)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(k int, a *float32, stride int, x, y *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(
		fmt.Sprintf("%s sets y[r] = sum over p < k of A(r, p)*x[p] for r < %d, where", name, rows),
		"A(r, p) is a[(p/16)*stride+r*16+p%16]: rows of column panels of 16",
		"columns, stride floats apart. k must be a positive multiple of 16.")
	var (
		k      = reg.RCX
		a      = reg.RSI
		stride = reg.R8
		x      = reg.RDI
		y      = reg.RDX
	)
	acc := ymms(0, 1, 2, 3, 4, 5, 6, 7) // row r: acc[2r], acc[2r+1]
	xv := ymms(8, 9)
	ctx.Load(ctx.Param("k"), k)
	ctx.Load(ctx.Param("a"), a)
	ctx.Load(ctx.Param("stride"), stride)
	ctx.Load(ctx.Param("x"), x)
	ctx.Load(ctx.Param("y"), y)
	ctx.SHLQ(operand.U8(2), stride)
	for i := 0; i < 2*rows; i++ {
		ctx.VXORPS(acc[i], acc[i], acc[i])
	}
	l := func(s string) string { return name + s }
	ctx.Label(l("panel"))
	ctx.VMOVUPS(operand.Mem{Base: x}, xv[0])
	ctx.VMOVUPS(operand.Mem{Base: x, Disp: 32}, xv[1])
	for r := 0; r < rows; r++ {
		ctx.VFMADD231PS(operand.Mem{Base: a, Disp: 64 * r}, xv[0], acc[2*r])
		ctx.VFMADD231PS(operand.Mem{Base: a, Disp: 64*r + 32}, xv[1], acc[2*r+1])
	}
	ctx.ADDQ(stride, a)
	ctx.ADDQ(operand.U8(64), x)
	ctx.SUBQ(operand.U8(16), k)
	ctx.JNZ(operand.LabelRef(l("panel")))
	for r := 0; r < rows; r++ {
		sumPair(ctx, acc[2*r], acc[2*r+1])
		ctx.VMOVSS(acc[2*r].AsX(), operand.Mem{Base: y, Disp: 4 * r})
	}
	ctx.VZEROUPPER()
	ctx.RET()
}

// sumPair sums the 16 floats of s and t into the low float of s, the
// rest of s and t left as the sums leave them; a VEX scalar op zeroes
// s's upper lanes.
func sumPair(ctx *build.Context, s, t reg.VecPhysical) {
	ctx.VADDPS(t, s, s)
	ctx.VEXTRACTF128(operand.U8(1), s, t.AsX())
	ctx.VADDPS(t.AsX(), s.AsX(), s.AsX())
	ctx.VMOVHLPS(s.AsX(), s.AsX(), t.AsX())
	ctx.VADDPS(t.AsX(), s.AsX(), s.AsX())
	ctx.VMOVSHDUP(s.AsX(), t.AsX())
	ctx.VADDSS(t.AsX(), s.AsX(), s.AsX())
}

func gemv(ctx *build.Context, rows int) {
	name := fmt.Sprintf("gemv%d", rows)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(k int, a *float32, lda int, x, y *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(fmt.Sprintf("%s sets y[r] = sum over p < k of a[r*lda+p]*x[p] for r < %d.", name, rows))
	var (
		k   = reg.RCX
		a   = reg.RSI
		lda = reg.R8
		x   = reg.RDI
		y   = reg.RDX
		row = []reg.GPPhysical{reg.RSI, reg.R9, reg.R10, reg.R11}
	)
	acc := ymms(0, 1, 2, 3, 4, 5, 6, 7) // row r: acc[2r], acc[2r+1]
	xv := ymms(8, 9)
	ctx.Load(ctx.Param("k"), k)
	ctx.Load(ctx.Param("a"), a)
	ctx.Load(ctx.Param("lda"), lda)
	ctx.Load(ctx.Param("x"), x)
	ctx.Load(ctx.Param("y"), y)
	ctx.SHLQ(operand.U8(2), lda)
	for r := 1; r < rows; r++ {
		ctx.LEAQ(operand.Mem{Base: row[r-1], Index: lda, Scale: 1}, row[r])
	}
	for i := 0; i < 2*rows; i++ {
		ctx.VXORPS(acc[i], acc[i], acc[i])
	}
	advance := func(n int) {
		ctx.ADDQ(operand.U8(4*n), x)
		for r := 0; r < rows; r++ {
			ctx.ADDQ(operand.U8(4*n), row[r])
		}
		ctx.SUBQ(operand.U8(n), k)
	}
	l := func(s string) string { return name + s }

	ctx.Label(l("x16"))
	ctx.CMPQ(k, operand.U8(16))
	ctx.JL(operand.LabelRef(l("x8")))
	ctx.VMOVUPS(operand.Mem{Base: x}, xv[0])
	ctx.VMOVUPS(operand.Mem{Base: x, Disp: 32}, xv[1])
	for r := 0; r < rows; r++ {
		ctx.VFMADD231PS(operand.Mem{Base: row[r]}, xv[0], acc[2*r])
		ctx.VFMADD231PS(operand.Mem{Base: row[r], Disp: 32}, xv[1], acc[2*r+1])
	}
	advance(16)
	ctx.JMP(operand.LabelRef(l("x16")))

	ctx.Label(l("x8"))
	ctx.CMPQ(k, operand.U8(8))
	ctx.JL(operand.LabelRef(l("sum")))
	ctx.VMOVUPS(operand.Mem{Base: x}, xv[0])
	for r := 0; r < rows; r++ {
		ctx.VFMADD231PS(operand.Mem{Base: row[r]}, xv[0], acc[2*r])
	}
	advance(8)

	// Sum each row's accumulators into the low float of acc[2r] (a VEX
	// scalar op zeroes the upper lanes, so this comes before the tail).
	ctx.Label(l("sum"))
	for r := 0; r < rows; r++ {
		sumPair(ctx, acc[2*r], acc[2*r+1])
	}

	ctx.Label(l("x1"))
	ctx.TESTQ(k, k)
	ctx.JZ(operand.LabelRef(l("store")))
	ctx.VMOVSS(operand.Mem{Base: x}, xv[0].AsX())
	for r := 0; r < rows; r++ {
		ctx.VFMADD231SS(operand.Mem{Base: row[r]}, xv[0].AsX(), acc[2*r].AsX())
	}
	advance(1)
	ctx.JMP(operand.LabelRef(l("x1")))

	ctx.Label(l("store"))
	for r := 0; r < rows; r++ {
		ctx.VMOVSS(acc[2*r].AsX(), operand.Mem{Base: y, Disp: 4 * r})
	}
	ctx.VZEROUPPER()
	ctx.RET()
}
