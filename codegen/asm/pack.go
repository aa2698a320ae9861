package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Pack adds the packing routines for full panels to ctx. Each copies kc
// steps of a row-major matrix (rows ld floats apart) into the layout the
// micro-kernel reads:
//
//	packA6N   A panel from 6 rows of A:           dst[6p+r]  = src[r*ld+p]
//	packA6T   A panel from 6 columns of stored Aᵀ: dst[6p+r]  = src[p*ld+r]
//	packB16N  B panels from 16*panels columns of B: dst[q*16kc+16p+j] = src[p*ld+16q+j]
//	packB16T  B panel from 16 rows of stored Bᵀ:   dst[16p+j] = src[j*ld+p]
//
// and packB16Offs and packB16TOffs pack B panels whose rows lie anywhere in
// src, as those of a convolution's implicit im2col matrix and its
// transpose do.
//
// The transposing ones move 4 x 4 blocks through registers with the usual
// unpack-and-shuffle sequence.
func Pack(ctx *build.Context) {
	packA6N(ctx)
	packA6T(ctx)
	packB16N(ctx)
	packB16T(ctx)
	packB16Offs(ctx)
	packB16TOffs(ctx)
	packB16Segs(ctx)
}

var (
	pkc  = reg.RCX // steps left
	psrc = reg.RSI
	pdst = reg.RDI
	pld  = reg.R8  // ld in bytes
	pld3 = reg.R9  // 3*ld in bytes
	pb1  = reg.R10 // further row bases
	pb2  = reg.R11
	pb3  = reg.R12
)

func packHeader(ctx *build.Context, name, doc string) {
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc int, src *float32, ld int, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(name+" "+doc, "kc must be at least 1.")
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("ld"), pld)
	ctx.Load(ctx.Param("dst"), pdst)
	ctx.SHLQ(operand.U8(2), pld)
	ctx.LEAQ(operand.Mem{Base: pld, Index: pld, Scale: 2}, pld3)
}

// rowMem returns the address of row i (0..15) at byte offset off, for rows
// based at psrc, pb1 = psrc+4ld, pb2 = psrc+8ld, pb3 = psrc+12ld.
func rowMem(i, off int) operand.Mem {
	base := []reg.Register{psrc, pb1, pb2, pb3}[i/4]
	m := operand.Mem{Base: base, Disp: off}
	switch i % 4 {
	case 1:
		m = m.Idx(pld, 1)
	case 2:
		m = m.Idx(pld, 2)
	case 3:
		m = m.Idx(pld3, 1)
	}
	return m
}

// transpose4 transposes the 4 x 4 blocks in each 128-bit lane of in[0..3]
// into out[0..3], using t[0..3] as scratch; in and out may be the same.
func transpose4(ctx *build.Context, in, t, out []reg.VecPhysical) {
	ctx.VUNPCKLPS(in[1], in[0], t[0]) // a0 b0 a1 b1
	ctx.VUNPCKHPS(in[1], in[0], t[1]) // a2 b2 a3 b3
	ctx.VUNPCKLPS(in[3], in[2], t[2]) // c0 d0 c1 d1
	ctx.VUNPCKHPS(in[3], in[2], t[3]) // c2 d2 c3 d3
	ctx.VSHUFPS(operand.U8(0x44), t[2], t[0], out[0])
	ctx.VSHUFPS(operand.U8(0xEE), t[2], t[0], out[1])
	ctx.VSHUFPS(operand.U8(0x44), t[3], t[1], out[2])
	ctx.VSHUFPS(operand.U8(0xEE), t[3], t[1], out[3])
}

func xmms(ids ...int) []reg.VecPhysical {
	all := []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7,
		reg.X8, reg.X9, reg.X10, reg.X11, reg.X12, reg.X13, reg.X14, reg.X15}
	v := make([]reg.VecPhysical, len(ids))
	for i, id := range ids {
		v[i] = all[id]
	}
	return v
}

func ymms(ids ...int) []reg.VecPhysical {
	all := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	v := make([]reg.VecPhysical, len(ids))
	for i, id := range ids {
		v[i] = all[id]
	}
	return v
}

// blockLoop emits: while pkc >= step { body; advance }; then while pkc > 0
// { tail; advance one }; RET.
func blockLoop(ctx *build.Context, name string, step int, body func(), tail func()) {
	ctx.Label(name + "block")
	ctx.CMPQ(pkc, operand.U8(step))
	ctx.JL(operand.LabelRef(name + "tail"))
	body()
	ctx.SUBQ(operand.U8(step), pkc)
	ctx.JMP(operand.LabelRef(name + "block"))
	ctx.Label(name + "tail")
	ctx.TESTQ(pkc, pkc)
	ctx.JZ(operand.LabelRef(name + "done"))
	tail()
	ctx.DECQ(pkc)
	ctx.JMP(operand.LabelRef(name + "tail"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}

// packAPrefetch is how far ahead, in bytes, packA6N prefetches each row.
const packAPrefetch = 256

func packA6N(ctx *build.Context) {
	const name = "packA6N"
	packHeader(ctx, name, fmt.Sprintf("packs rows 0..5 of src into an A panel: dst[%d*p+r] = src[r*ld+p].", MR))
	ctx.LEAQ(operand.Mem{Base: psrc, Index: pld, Scale: 4}, pb1)
	x := xmms(0, 1, 2, 3, 4, 5)
	t := xmms(6, 7, 8, 9)
	// four4 packs 4 steps starting at byte offset off of each row.
	four4 := func(off int) {
		for r := 0; r < 6; r++ {
			ctx.VMOVUPS(rowMem(r, off), x[r])
		}
		transpose4(ctx, x[:4], t, x[:4])
		ctx.VUNPCKLPS(x[5], x[4], t[0]) // r4 r5 at p, p+1
		ctx.VUNPCKHPS(x[5], x[4], t[1]) // r4 r5 at p+2, p+3
		d := off / 4 * 4 * MR
		for q := 0; q < 4; q++ {
			ctx.VMOVUPS(x[q], operand.Mem{Base: pdst, Disp: d + 4*MR*q})
		}
		ctx.VMOVLPS(t[0], operand.Mem{Base: pdst, Disp: d + 16})
		ctx.VMOVHPS(t[0], operand.Mem{Base: pdst, Disp: d + 4*MR + 16})
		ctx.VMOVLPS(t[1], operand.Mem{Base: pdst, Disp: d + 8*MR + 16})
		ctx.VMOVHPS(t[1], operand.Mem{Base: pdst, Disp: d + 12*MR + 16})
	}
	advance := func(steps int) {
		ctx.ADDQ(operand.U8(4*steps), psrc)
		ctx.ADDQ(operand.U8(4*steps), pb1)
		ctx.ADDQ(operand.U32(4*MR*steps), pdst)
		ctx.SUBQ(operand.U8(steps), pkc)
	}
	// 16 steps (a cache line of each row) per trip, prefetching ahead.
	ctx.Label(name + "x16")
	ctx.CMPQ(pkc, operand.U8(16))
	ctx.JL(operand.LabelRef(name + "x4"))
	for r := 0; r < 6; r++ {
		ctx.PREFETCHT0(rowMem(r, packAPrefetch))
	}
	for off := 0; off < 64; off += 16 {
		four4(off)
	}
	advance(16)
	ctx.JMP(operand.LabelRef(name + "x16"))
	ctx.Label(name + "x4")
	ctx.CMPQ(pkc, operand.U8(4))
	ctx.JL(operand.LabelRef(name + "x1"))
	four4(0)
	advance(4)
	ctx.JMP(operand.LabelRef(name + "x4"))
	ctx.Label(name + "x1")
	ctx.TESTQ(pkc, pkc)
	ctx.JZ(operand.LabelRef(name + "done"))
	for r := 0; r < 6; r++ {
		ctx.VMOVSS(rowMem(r, 0), x[r])
		ctx.VMOVSS(x[r], operand.Mem{Base: pdst, Disp: 4 * r})
	}
	advance(1)
	ctx.JMP(operand.LabelRef(name + "x1"))
	ctx.Label(name + "done")
	ctx.RET()
}

func packA6T(ctx *build.Context) {
	const name = "packA6T"
	packHeader(ctx, name, fmt.Sprintf("packs columns 0..5 of src into an A panel: dst[%d*p+r] = src[p*ld+r].", MR))
	x := xmms(0, 1, 2, 3)
	blockLoop(ctx, name, 2, func() {
		ctx.VMOVUPS(operand.Mem{Base: psrc}, x[0])
		ctx.VMOVSD(operand.Mem{Base: psrc, Disp: 16}, x[1])
		ctx.VMOVUPS(operand.Mem{Base: psrc, Index: pld, Scale: 1}, x[2])
		ctx.VMOVSD(operand.Mem{Base: psrc, Index: pld, Scale: 1, Disp: 16}, x[3])
		ctx.VMOVUPS(x[0], operand.Mem{Base: pdst})
		ctx.VMOVSD(x[1], operand.Mem{Base: pdst, Disp: 16})
		ctx.VMOVUPS(x[2], operand.Mem{Base: pdst, Disp: 4 * MR})
		ctx.VMOVSD(x[3], operand.Mem{Base: pdst, Disp: 4*MR + 16})
		ctx.LEAQ(operand.Mem{Base: psrc, Index: pld, Scale: 2}, psrc)
		ctx.ADDQ(operand.U8(8*MR), pdst)
	}, func() {
		ctx.VMOVUPS(operand.Mem{Base: psrc}, x[0])
		ctx.VMOVSD(operand.Mem{Base: psrc, Disp: 16}, x[1])
		ctx.VMOVUPS(x[0], operand.Mem{Base: pdst})
		ctx.VMOVSD(x[1], operand.Mem{Base: pdst, Disp: 16})
		ctx.ADDQ(pld, psrc)
		ctx.ADDQ(operand.U8(4*MR), pdst)
	})
}

func packB16N(ctx *build.Context) {
	const name = "packB16N"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc, panels int, src *float32, ld int, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(
		fmt.Sprintf("%s packs columns 0..%d*panels-1 of src into panels B panels, kc*%d", name, NR, NR),
		fmt.Sprintf("floats apart: dst[q*kc*%d+%d*p+j] = src[p*ld+q*%d+j]. It walks src row by row,", NR, NR, NR),
		"so the hardware prefetcher streams it. kc and panels must be at least 1.",
	)
	var (
		np     = reg.RBX // panels left in this row
		stride = reg.R9  // panel stride in bytes
		s      = reg.R10 // walks a row of src
		d      = reg.R11 // walks the panels at one p
	)
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("ld"), pld)
	ctx.Load(ctx.Param("dst"), pdst)
	ctx.SHLQ(operand.U8(2), pld)
	ctx.MOVQ(pkc, stride)
	ctx.SHLQ(operand.U8(log2(4*NR)), stride)
	y := ymms(0, 1, 2, 3)
	ctx.Label(name + "row")
	ctx.Load(ctx.Param("panels"), np)
	ctx.MOVQ(psrc, s)
	ctx.MOVQ(pdst, d)
	ctx.Label(name + "panel")
	ctx.VMOVUPS(operand.Mem{Base: s}, y[0])
	ctx.VMOVUPS(operand.Mem{Base: s, Disp: 32}, y[1])
	ctx.VMOVUPS(y[0], operand.Mem{Base: d})
	ctx.VMOVUPS(y[1], operand.Mem{Base: d, Disp: 32})
	ctx.ADDQ(operand.U8(4*NR), s)
	ctx.ADDQ(stride, d)
	ctx.DECQ(np)
	ctx.JNZ(operand.LabelRef(name + "panel"))
	ctx.ADDQ(pld, psrc)
	ctx.ADDQ(operand.U8(4*NR), pdst)
	ctx.DECQ(pkc)
	ctx.JNZ(operand.LabelRef(name + "row"))
	ctx.VZEROUPPER()
	ctx.RET()
}

func packB16Offs(ctx *build.Context) {
	const name = "packB16Offs"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc, panels int, src *float32, koffs, poffs *int32, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(
		fmt.Sprintf("%s packs panels B panels, kc*%d floats apart, whose rows are the %d", name, NR, NR),
		"floats of src at the sum of a row offset and a panel offset:",
		fmt.Sprintf("dst[q*kc*%d+%d*p+j] = src[koffs[p]+poffs[q]+j]. kc and panels must be at least 1.", NR, NR),
	)
	var (
		np     = reg.RBX // panels left in this row
		stride = reg.R9  // panel stride in bytes
		ko     = reg.R10 // walks koffs
		po     = reg.R11 // walks poffs
		d      = reg.R12 // walks the panels at one p
		row    = reg.R13 // src + 4*koffs[p]
		off    = reg.RAX
	)
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("koffs"), ko)
	ctx.Load(ctx.Param("dst"), pdst)
	ctx.MOVQ(pkc, stride)
	ctx.SHLQ(operand.U8(log2(4*NR)), stride)
	y := ymms(0, 1)
	ctx.Label(name + "row")
	ctx.Load(ctx.Param("panels"), np)
	ctx.Load(ctx.Param("poffs"), po)
	ctx.MOVLQSX(operand.Mem{Base: ko}, row)
	ctx.LEAQ(operand.Mem{Base: psrc, Index: row, Scale: 4}, row)
	ctx.MOVQ(pdst, d)
	ctx.Label(name + "panel")
	ctx.MOVLQSX(operand.Mem{Base: po}, off)
	ctx.VMOVUPS(operand.Mem{Base: row, Index: off, Scale: 4}, y[0])
	ctx.VMOVUPS(operand.Mem{Base: row, Index: off, Scale: 4, Disp: 32}, y[1])
	ctx.VMOVUPS(y[0], operand.Mem{Base: d})
	ctx.VMOVUPS(y[1], operand.Mem{Base: d, Disp: 32})
	ctx.ADDQ(operand.U8(4), po)
	ctx.ADDQ(stride, d)
	ctx.DECQ(np)
	ctx.JNZ(operand.LabelRef(name + "panel"))
	ctx.ADDQ(operand.U8(4), ko)
	ctx.ADDQ(operand.U8(4*NR), pdst)
	ctx.DECQ(pkc)
	ctx.JNZ(operand.LabelRef(name + "row"))
	ctx.VZEROUPPER()
	ctx.RET()
}

// SegsMax is the most runs of side-by-side floats a panel row of
// packB16Segs may gather.
const SegsMax = 4

func packB16Segs(ctx *build.Context) {
	const name = "packB16Segs"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc, nseg int, src *float32, koffs, shifts, masks *int32, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(
		fmt.Sprintf("%s packs a B panel whose rows gather nseg (1..%d) runs of src:", name, SegsMax),
		fmt.Sprintf("dst[%d*p+j] = src[koffs[p]+shifts[s]+j] for the run s whose mask lane", NR),
		fmt.Sprintf("masks[%d*s+j] is set (all bits), 0 where none is. The masked loads read only", NR),
		"the lanes set, so a shift may point before src. kc must be at least 1.",
	)
	var (
		ko   = reg.R8  // walks koffs
		sh   = reg.R9  // walks shifts
		mk   = reg.R10 // walks masks
		ns   = reg.R11 // runs left in this row
		base = reg.R12 // src + 4*koffs[p]
		off  = reg.RAX
	)
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("koffs"), ko)
	ctx.Load(ctx.Param("dst"), pdst)
	y := ymms(0, 1, 2, 3, 4, 5)
	ctx.Label(name + "row")
	ctx.Load(ctx.Param("nseg"), ns)
	ctx.Load(ctx.Param("shifts"), sh)
	ctx.Load(ctx.Param("masks"), mk)
	ctx.MOVLQSX(operand.Mem{Base: ko}, base)
	ctx.LEAQ(operand.Mem{Base: psrc, Index: base, Scale: 4}, base)
	ctx.VXORPS(y[0], y[0], y[0])
	ctx.VXORPS(y[1], y[1], y[1])
	ctx.Label(name + "seg")
	ctx.MOVLQSX(operand.Mem{Base: sh}, off)
	ctx.VMOVDQU(operand.Mem{Base: mk}, y[2])
	ctx.VMOVDQU(operand.Mem{Base: mk, Disp: 32}, y[3])
	ctx.VMASKMOVPS(operand.Mem{Base: base, Index: off, Scale: 4}, y[2], y[4])
	ctx.VMASKMOVPS(operand.Mem{Base: base, Index: off, Scale: 4, Disp: 32}, y[3], y[5])
	ctx.VORPS(y[4], y[0], y[0])
	ctx.VORPS(y[5], y[1], y[1])
	ctx.ADDQ(operand.U8(4), sh)
	ctx.ADDQ(operand.U8(4*NR), mk)
	ctx.DECQ(ns)
	ctx.JNZ(operand.LabelRef(name + "seg"))
	ctx.VMOVUPS(y[0], operand.Mem{Base: pdst})
	ctx.VMOVUPS(y[1], operand.Mem{Base: pdst, Disp: 32})
	ctx.ADDQ(operand.U8(4), ko)
	ctx.ADDQ(operand.U8(4*NR), pdst)
	ctx.DECQ(pkc)
	ctx.JNZ(operand.LabelRef(name + "row"))
	ctx.VZEROUPPER()
	ctx.RET()
}

func packB16TOffs(ctx *build.Context) {
	const name = "packB16TOffs"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc int, src *float32, koffs *int32, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(
		fmt.Sprintf("%s packs the rows of src at koffs[0..%d] into a B panel:", name, NR-1),
		fmt.Sprintf("dst[%d*p+j] = src[koffs[j]+p]. kc must be at least 1.", NR),
	)
	ko := reg.R8
	off := []reg.GPPhysical{reg.R9, reg.R10}
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("koffs"), ko)
	ctx.Load(ctx.Param("dst"), pdst)
	// row returns row j's floats at psrc, its offset loaded into a
	// register first.
	row := func(j int) operand.Mem {
		r := off[j%2]
		ctx.MOVLQSX(operand.Mem{Base: ko, Disp: 4 * j}, r)
		return operand.Mem{Base: psrc, Index: r, Scale: 4}
	}
	transposeB16(ctx, name, row, []reg.Register{psrc})
}

// transposeB16 emits the loop of packB16T and packB16TOffs, which differ
// only in where row j (0..15) of src lies: row(j) returns its address at
// the current step, and advancing the registers in ptrs moves every row on.
func transposeB16(ctx *build.Context, name string, row func(j int) operand.Mem, ptrs []reg.Register) {
	y := ymms(0, 1, 2, 3)
	t := ymms(4, 5, 6, 7)
	blockLoop(ctx, name, 4, func() {
		// Rows h*8+i (low lane) and h*8+i+4 (high lane), 4 steps of p.
		for h := 0; h < 2; h++ {
			for i := 0; i < 4; i++ {
				ctx.VMOVUPS(row(8*h+i), y[i].AsX())
				ctx.VINSERTF128(operand.U8(1), row(8*h+i+4), y[i], y[i])
			}
			transpose4(ctx, y, t, y)
			for q := 0; q < 4; q++ {
				ctx.VMOVUPS(y[q], operand.Mem{Base: pdst, Disp: 4*NR*q + 32*h})
			}
		}
		for _, r := range ptrs {
			ctx.ADDQ(operand.U8(16), r)
		}
		ctx.ADDQ(operand.U32(16*NR), pdst)
	}, func() {
		x := xmms(0)[0]
		for j := 0; j < NR; j++ {
			ctx.VMOVSS(row(j), x)
			ctx.VMOVSS(x, operand.Mem{Base: pdst, Disp: 4 * j})
		}
		for _, r := range ptrs {
			ctx.ADDQ(operand.U8(4), r)
		}
		ctx.ADDQ(operand.U8(4*NR), pdst)
	})
}

func packB16T(ctx *build.Context) {
	const name = "packB16T"
	packHeader(ctx, name, fmt.Sprintf("packs rows 0..15 of src into a B panel: dst[%d*p+j] = src[j*ld+p].", NR))
	ctx.LEAQ(operand.Mem{Base: psrc, Index: pld, Scale: 4}, pb1)
	ctx.LEAQ(operand.Mem{Base: pb1, Index: pld, Scale: 4}, pb2)
	ctx.LEAQ(operand.Mem{Base: pb2, Index: pld, Scale: 4}, pb3)
	transposeB16(ctx, name, func(j int) operand.Mem { return rowMem(j, 0) }, []reg.Register{psrc, pb1, pb2, pb3})
}
