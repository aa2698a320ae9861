package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The tile of dotTile: DotRows rows of A by DotCols taps of the sample.
const (
	DotRows = 6
	DotCols = 4
)

// DotTile adds dotTile6x4 to ctx, the AVX-512 kernel of a small
// convolution's weight gradient as dot products (see
// runtime/gemm.SgemmIm2colTDot):
//
//	c[i*4+j] = sum over y < oh, t < ow of a[i*lda+y*ow+t] * x[koffs[j]+y*xs+t]
//
// for the 6 rows i of A, an output gradient of oh rows of ow pixels, and 4
// taps j of the sample, whose rows lie xs floats apart. Each of the 24 sums
// keeps 16 lanes in a ZMM register, taking each row 16 pixels at a time
// and its last ow%16 through a mask, and folds them at the end: lane l
// adds lane l^8, then l^4, l^2, l^1.
func DotTile(ctx *build.Context) {
	const name = "dotTile6x4"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(oh, ow int, a *float32, lda int, x *float32, koffs *int32, xs int, c *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(
		fmt.Sprintf("%s sets c[i*%d+j], for i < %d and j < %d, to the sum over the oh rows", name, DotCols, DotRows, DotCols),
		"of ow floats of the products of a+i*lda's rows and x+koffs[j]'s, xs floats",
		"apart (see codegen/asm.DotTile). It needs AVX-512F and oh, ow >= 1.",
	)
	var (
		rows = reg.RCX
		full = reg.R14 // 16-float chunks of a row
		n    = reg.RBX // chunks left in the row
		a    = reg.RSI
		a3   = reg.RDI // row 3 of A
		lda  = reg.RDX // in bytes
		aAdv = reg.R15 // from a row's tail to the next row, in A
		xAdv = reg.R9  // and in the sample
		c    = reg.R8
		xp   = []reg.GPPhysical{reg.R10, reg.R11, reg.R12, reg.R13}
		zmm  = tile{zmm: true}.regs()
		accs = zmm[:DotRows*DotCols]
		av   = zmm[DotRows*DotCols : DotRows*DotCols+DotRows]
		xv   = zmm[31]
	)
	ctx.Load(ctx.Param("oh"), rows)
	ctx.Load(ctx.Param("ow"), full)
	// K1 selects a row's last ow%16 floats; aAdv and xAdv step from where
	// the tail starts to the next row.
	tailMask(ctx, full)
	ctx.MOVQ(full, reg.RAX)
	ctx.SHLQ(operand.U8(6), reg.RAX) // bytes of a row's chunks
	ctx.Load(ctx.Param("ow"), aAdv)
	ctx.SHLQ(operand.U8(2), aAdv)
	ctx.SUBQ(reg.RAX, aAdv)
	ctx.Load(ctx.Param("xs"), xAdv)
	ctx.SHLQ(operand.U8(2), xAdv)
	ctx.SUBQ(reg.RAX, xAdv)
	ctx.Load(ctx.Param("a"), a)
	ctx.Load(ctx.Param("lda"), lda)
	ctx.SHLQ(operand.U8(2), lda)
	ctx.LEAQ(operand.Mem{Base: a, Index: lda, Scale: 2}, a3)
	ctx.ADDQ(lda, a3)
	ctx.Load(ctx.Param("x"), reg.RAX)
	ctx.Load(ctx.Param("koffs"), c)
	for j, x := range xp {
		ctx.MOVLQSX(operand.Mem{Base: c, Disp: 4 * j}, x)
		ctx.LEAQ(operand.Mem{Base: reg.RAX, Index: x, Scale: 4}, x)
	}
	ctx.Load(ctx.Param("c"), c)
	for _, v := range accs {
		ctx.VXORPS(v, v, v)
	}
	rowAt := func(i int) operand.Mem {
		m := operand.Mem{Base: a}
		if i >= 3 {
			m.Base, i = a3, i-3
		}
		if i > 0 {
			m.Index, m.Scale = lda, uint8(i)
		}
		return m
	}
	// chunk multiplies the 16 floats at the pointers, or those of K1.
	chunk := func(masked bool) {
		for i, v := range av {
			if masked {
				ctx.VMOVUPS_Z(rowAt(i), reg.K1, v)
			} else {
				ctx.VMOVUPS(rowAt(i), v)
			}
		}
		for j, x := range xp {
			if masked {
				ctx.VMOVUPS_Z(operand.Mem{Base: x}, reg.K1, xv)
			} else {
				ctx.VMOVUPS(operand.Mem{Base: x}, xv)
			}
			for i := range av {
				ctx.VFMADD231PS(av[i], xv, accs[i*DotCols+j])
			}
		}
	}
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + s) }
	ctx.Label(name + "row")
	ctx.MOVQ(full, n)
	ctx.TESTQ(n, n)
	ctx.JZ(lbl("tail"))
	ctx.Label(name + "x16")
	chunk(false)
	for _, p := range append([]reg.GPPhysical{a, a3}, xp...) {
		ctx.ADDQ(operand.U8(64), p)
	}
	ctx.DECQ(n)
	ctx.JNZ(lbl("x16"))
	ctx.Label(name + "tail")
	chunk(true)
	ctx.ADDQ(aAdv, a)
	ctx.ADDQ(aAdv, a3)
	for _, p := range xp {
		ctx.ADDQ(xAdv, p)
	}
	ctx.DECQ(rows)
	ctx.JNZ(lbl("row"))

	// Fold each sum's lanes, in ZMM registers (AVX-512F alone).
	for k, v := range accs {
		for _, fold := range []func(){
			func() { ctx.VSHUFF32X4(operand.U8(0x4e), v, v, xv) },
			func() { ctx.VSHUFF32X4(operand.U8(0xb1), v, v, xv) },
			func() { ctx.VPERMILPS(operand.U8(0x4e), v, xv) },
			func() { ctx.VPERMILPS(operand.U8(0xb1), v, xv) },
		} {
			fold()
			ctx.VADDPS(xv, v, v)
		}
		ctx.VMOVSS(v.AsX(), operand.Mem{Base: c, Disp: 4 * k})
	}
	ctx.VZEROUPPER()
	ctx.RET()
}
