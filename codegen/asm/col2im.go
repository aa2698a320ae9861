package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Col2imGroups are the channel counts col2imZ sums side by side, largest
// first: four channels keep four independent chains of additions in
// flight, and the rest finish two and then one at a time.
var Col2imGroups = []int{4, 2, 1}

// Col2im adds col2imZ to ctx, the AVX-512 col2im of a stride-1
// convolution (see runtime/gemm.Col2im). It walks a table that lists, for
// each 16-float vector of a channel of the input gradient, the vectors of
// the column matrix that add into it:
//
//	tab: per vector  dstOff, dstMask, n, then n times  srcOff, srcMask
//
// all int32, offsets in floats from the channel's first float of dst and
// col, masks of 16 lanes. A vector starts at zero, adds each source vector
// through its mask (a zero-masked lane reads nothing, so srcOff may point
// before col) in table order, and is stored through dstMask. Every lane of
// dst is written, so dst need not be cleared first.
func Col2im(ctx *build.Context) {
	const name = "col2imZ"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, col *float32, tab *int32, vecs, chans, dstStride, colStride int)")
	ctx.Pragma("noescape")
	ctx.Doc(
		name+" sums the column matrix col of chans channels, colStride floats apart,",
		"into the input gradient dst, dstStride floats apart, through the vecs",
		"vectors of tab (see codegen/asm.Col2im). It needs AVX-512F and vecs >= 1.",
	)
	var (
		off    = reg.RAX // a source vector's offset
		dOff   = reg.RBX // the vector's offset in dst, then its address
		chans  = reg.RCX
		dst    = reg.RDI
		tab    = reg.R8
		ds     = reg.R10 // dst stride in bytes
		cs     = reg.R11 // col stride in bytes
		t      = reg.R12 // walks tab
		vecs   = reg.R13
		n      = reg.R14 // source vectors left
		bases  = []reg.GPPhysical{reg.RSI, reg.RDX, reg.R15, reg.R9}
		accs   = []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3}
		lbl    = func(s string, g int) operand.LabelRef { return operand.LabelRef(fmt.Sprintf("%s%s%d", name, s, g)) }
		labelf = func(s string, g int) { ctx.Label(fmt.Sprintf("%s%s%d", name, s, g)) }
	)
	ctx.Load(ctx.Param("dst"), dst)
	ctx.Load(ctx.Param("col"), bases[0])
	ctx.Load(ctx.Param("tab"), tab)
	ctx.Load(ctx.Param("chans"), chans)
	ctx.Load(ctx.Param("dstStride"), ds)
	ctx.Load(ctx.Param("colStride"), cs)
	ctx.SHLQ(operand.U8(2), ds)
	ctx.SHLQ(operand.U8(2), cs)
	for gi, g := range Col2imGroups {
		next := "done"
		if gi+1 < len(Col2imGroups) {
			next = fmt.Sprintf("pass%d", Col2imGroups[gi+1])
		}
		labelf("pass", g)
		ctx.CMPQ(chans, operand.U8(g))
		ctx.JL(operand.LabelRef(name + next))
		for i := 1; i < g; i++ {
			ctx.LEAQ(operand.Mem{Base: bases[i-1], Index: cs, Scale: 1}, bases[i])
		}
		ctx.MOVQ(tab, t)
		ctx.Load(ctx.Param("vecs"), vecs)
		labelf("vec", g)
		ctx.MOVLQSX(operand.Mem{Base: t}, dOff)
		ctx.KMOVW(operand.Mem{Base: t, Disp: 4}, reg.K2)
		ctx.MOVL(operand.Mem{Base: t, Disp: 8}, n.As32())
		ctx.ADDQ(operand.U8(12), t)
		for _, z := range accs[:g] {
			ctx.VXORPS(z, z, z)
		}
		ctx.TESTQ(n, n)
		ctx.JZ(lbl("store", g))
		labelf("src", g)
		ctx.MOVLQSX(operand.Mem{Base: t}, off)
		ctx.KMOVW(operand.Mem{Base: t, Disp: 4}, reg.K1)
		for i, z := range accs[:g] {
			ctx.VADDPS(operand.Mem{Base: bases[i], Index: off, Scale: 4}, z, reg.K1, z)
		}
		ctx.ADDQ(operand.U8(8), t)
		ctx.DECQ(n)
		ctx.JNZ(lbl("src", g))
		labelf("store", g)
		ctx.LEAQ(operand.Mem{Base: dst, Index: dOff, Scale: 4}, dOff)
		for i, z := range accs[:g] {
			if i > 0 {
				ctx.ADDQ(ds, dOff)
			}
			ctx.VMOVUPS(z, reg.K2, operand.Mem{Base: dOff})
		}
		ctx.DECQ(vecs)
		ctx.JNZ(lbl("vec", g))
		// On to the next g channels.
		for range g {
			ctx.ADDQ(ds, dst)
		}
		ctx.LEAQ(operand.Mem{Base: bases[g-1], Index: cs, Scale: 1}, bases[0])
		ctx.SUBQ(operand.U8(g), chans)
		ctx.JMP(lbl("pass", g))
	}
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}
