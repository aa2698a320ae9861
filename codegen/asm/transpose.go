package asm

import (
	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Transpose adds transpose8 to ctx: transpose8(dst, src *float32, rows,
// cols, ldd, lds int) sets dst[j*ldd+i] = src[i*lds+j] for i < 8*rows and
// j < 8*cols, an 8 x 8 block at a time, each moved through registers with
// the usual unpack, shuffle and 128-bit permute sequence. The GEMM driver
// uses it to turn a product computed transposed around.
func Transpose(ctx *build.Context) {
	ctx.Function("transpose8")
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, src *float32, rows, cols, ldd, lds int)")
	ctx.Pragma("noescape")
	ctx.Doc("transpose8 sets dst[j*ldd+i] = src[i*lds+j] for the 8*rows x 8*cols",
		"top-left part of src, an 8 x 8 block at a time.")
	dst, src, rows, cols, ldd, lds := reg.RDI, reg.RSI, reg.RCX, reg.RDX, reg.R8, reg.R9
	lds3, ldd3, left, sp, dp, half := reg.R10, reg.R11, reg.R12, reg.R13, reg.RBX, reg.RAX
	ctx.Load(ctx.Param("dst"), dst)
	ctx.Load(ctx.Param("src"), src)
	ctx.Load(ctx.Param("rows"), rows)
	ctx.Load(ctx.Param("cols"), cols)
	ctx.Load(ctx.Param("ldd"), ldd)
	ctx.Load(ctx.Param("lds"), lds)
	ctx.SHLQ(operand.U8(2), ldd) // bytes
	ctx.SHLQ(operand.U8(2), lds)
	ctx.LEAQ(operand.Mem{Base: lds, Index: lds, Scale: 2}, lds3)
	ctx.LEAQ(operand.Mem{Base: ldd, Index: ldd, Scale: 2}, ldd3)
	r, t := ymms(0, 1, 2, 3, 4, 5, 6, 7), ymms(8, 9, 10, 11, 12, 13, 14, 15)
	// row i of a block of four lines base, base+ld, ... apart.
	line := func(base, ld, ld3 reg.GPPhysical, i int) operand.Mem {
		switch i {
		case 0:
			return operand.Mem{Base: base}
		case 3:
			return operand.Mem{Base: base, Index: ld3, Scale: 1}
		}
		return operand.Mem{Base: base, Index: ld, Scale: uint8(i)}
	}
	ctx.Label("transposerow")
	ctx.TESTQ(rows, rows)
	ctx.JZ(operand.LabelRef("transposedone"))
	ctx.MOVQ(cols, left)
	ctx.MOVQ(src, sp)
	ctx.MOVQ(dst, dp)
	ctx.Label("transposeblock")
	ctx.TESTQ(left, left)
	ctx.JZ(operand.LabelRef("transposenext"))
	ctx.LEAQ(operand.Mem{Base: sp, Index: lds, Scale: 4}, half)
	for i := range 4 {
		ctx.VMOVUPS(line(sp, lds, lds3, i), r[i])
		ctx.VMOVUPS(line(half, lds, lds3, i), r[4+i])
	}
	// t[2q], t[2q+1]: rows 2q and 2q+1 interleaved, elements 0, 1, 4, 5
	// and 2, 3, 6, 7.
	for q := range 4 {
		ctx.VUNPCKLPS(r[2*q+1], r[2*q], t[2*q])
		ctx.VUNPCKHPS(r[2*q+1], r[2*q], t[2*q+1])
	}
	// r[c] (r[4+c] for rows 4-7): column c of rows 0-3 in the low lane,
	// column c+4 in the high one.
	for h := range 2 {
		a, b := t[4*h:], r[4*h:]
		ctx.VSHUFPS(operand.U8(0x44), a[2], a[0], b[0])
		ctx.VSHUFPS(operand.U8(0xEE), a[2], a[0], b[1])
		ctx.VSHUFPS(operand.U8(0x44), a[3], a[1], b[2])
		ctx.VSHUFPS(operand.U8(0xEE), a[3], a[1], b[3])
	}
	// t[c]: column c; t[4+c]: column c+4.
	for c := range 4 {
		ctx.VPERM2F128(operand.U8(0x20), r[4+c], r[c], t[c])
		ctx.VPERM2F128(operand.U8(0x31), r[4+c], r[c], t[4+c])
	}
	ctx.LEAQ(operand.Mem{Base: dp, Index: ldd, Scale: 4}, half)
	for i := range 4 {
		ctx.VMOVUPS(t[i], line(dp, ldd, ldd3, i))
		ctx.VMOVUPS(t[4+i], line(half, ldd, ldd3, i))
	}
	ctx.ADDQ(operand.U8(32), sp)
	ctx.LEAQ(operand.Mem{Base: dp, Index: ldd, Scale: 8}, dp)
	ctx.DECQ(left)
	ctx.JMP(operand.LabelRef("transposeblock"))
	ctx.Label("transposenext")
	ctx.LEAQ(operand.Mem{Base: src, Index: lds, Scale: 8}, src)
	ctx.ADDQ(operand.U8(32), dst)
	ctx.DECQ(rows)
	ctx.JMP(operand.LabelRef("transposerow"))
	ctx.Label("transposedone")
	ctx.VZEROUPPER()
	ctx.RET()
}
