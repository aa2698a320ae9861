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
// convolution (see runtime/gemm.Col2im), and col2imY, its AVX2 twin. Both
// walk a table that lists, for
// each 16-float vector of a channel of the input gradient, the vectors of
// the column matrix that add into it:
//
//	tab: per vector  dstOff, dstMask, n, then n times  srcOff, srcMask
//
// all int32, offsets in floats from the channel's first float of dst and
// col, masks of 16 lanes. A vector starts at zero, adds each source vector
// through its mask (a zero-masked lane reads nothing, so srcOff may point
// before col) in table order, and is stored through dstMask. Every lane of
// dst is written, so dst need not be cleared first. col2imY does each
// 16-float vector as two halves of 8, with VMASKMOVPS and each byte of a
// mask expanded to lanes through a table; a lane masked off adds +0, which
// changes no sum that starts from +0.
func Col2im(ctx *build.Context) {
	col2imZ(ctx)
	col2imY(ctx)
}

func col2imZ(ctx *build.Context) {
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
	ctx.Load(ctx.Param("chans"), chans)
	col2imFrame{dst: dst, tab: tab, ds: ds, cs: cs, bases: bases}.passes(ctx, name, chans, func(g int) {
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
	})
}

// col2imY is col2imZ with AVX2 (see Col2im): the g channels' two halves
// are 2g accumulators, and the 16-bit masks turn into lane masks through
// bytemask, 256 entries of 8 lanes.
func col2imY(ctx *build.Context) {
	const name = "col2imY"
	table := ctx.StaticGlobal("bytemask")
	ctx.DataAttributes(attr.RODATA | attr.NOPTR)
	for m := range 256 {
		for l := range 8 {
			v := uint32(0)
			if m>>l&1 != 0 {
				v = 0xffffffff
			}
			ctx.AppendDatum(operand.U32(v))
		}
	}
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, col *float32, tab *int32, vecs, chans, dstStride, colStride int)")
	ctx.Pragma("noescape")
	ctx.Doc(
		name+" is col2imZ with AVX2: it sums the column matrix col of chans channels,",
		"colStride floats apart, into the input gradient dst, dstStride floats apart,",
		"through the vecs vectors of tab (see codegen/asm.Col2im). vecs must be at least 1.",
	)
	var (
		off   = reg.RAX // a source vector's offset
		dOff  = reg.RBX // the vector's offset in dst, then its address
		masks = reg.RCX // bytemask
		dst   = reg.RDI
		tab   = reg.R8
		ds    = reg.R10 // dst stride in bytes
		cs    = reg.R11 // col stride in bytes
		t     = reg.R12 // walks tab
		m     = reg.R13 // a mask byte's entry in bytemask
		n     = reg.R14 // source vectors left
		bases = []reg.GPPhysical{reg.RSI, reg.RDX, reg.R15, reg.R9}
		lo    = ymms(0, 1, 2, 3) // accumulators of the first 8 lanes
		hi    = ymms(4, 5, 6, 7) // and of the last 8
		mLo   = reg.Y8           // a source's lane masks
		mHi   = reg.Y9
		tmp   = reg.Y10
		dLo   = reg.Y11 // the vector's
		dHi   = reg.Y12
		ones  = reg.Y13
		chans = paramAddr(ctx, "chans") // channels left, kept in memory
		vecs  = ctx.AllocLocal(8)       // vectors left
		lbl   = func(s string, g int) operand.LabelRef { return operand.LabelRef(fmt.Sprintf("%s%s%d", name, s, g)) }
		label = func(s string, g int) { ctx.Label(fmt.Sprintf("%s%s%d", name, s, g)) }
	)
	// expand loads the lane masks of the 16-bit mask at mem into vlo and
	// vhi.
	expand := func(mem operand.Mem, vlo, vhi reg.VecPhysical) {
		for h, v := range []reg.VecPhysical{vlo, vhi} {
			mem.Disp += h
			ctx.MOVBQZX(mem, m)
			ctx.SHLQ(operand.U8(5), m)
			ctx.VMOVDQU(operand.Mem{Base: masks, Index: m, Scale: 1}, v)
		}
	}
	ctx.LEAQ(table, masks)
	ctx.VPCMPEQD(ones, ones, ones)
	col2imFrame{dst: dst, tab: tab, ds: ds, cs: cs, bases: bases}.passes(ctx, name, chans, func(g int) {
		ctx.MOVQ(tab, t)
		ctx.Load(ctx.Param("vecs"), off)
		ctx.MOVQ(off, vecs)
		label("vec", g)
		ctx.MOVLQSX(operand.Mem{Base: t}, dOff)
		expand(operand.Mem{Base: t, Disp: 4}, dLo, dHi)
		ctx.MOVL(operand.Mem{Base: t, Disp: 8}, n.As32())
		ctx.ADDQ(operand.U8(12), t)
		for i := range g {
			ctx.VXORPS(lo[i], lo[i], lo[i])
			ctx.VXORPS(hi[i], hi[i], hi[i])
		}
		ctx.TESTQ(n, n)
		ctx.JZ(lbl("store", g))
		label("src", g)
		ctx.MOVLQSX(operand.Mem{Base: t}, off)
		expand(operand.Mem{Base: t, Disp: 4}, mLo, mHi)
		for i := range g {
			for h, acc := range []reg.VecPhysical{lo[i], hi[i]} {
				mask := []reg.VecPhysical{mLo, mHi}[h]
				ctx.VMASKMOVPS(operand.Mem{Base: bases[i], Index: off, Scale: 4, Disp: 32 * h}, mask, tmp)
				ctx.VADDPS(tmp, acc, acc)
			}
		}
		ctx.ADDQ(operand.U8(8), t)
		ctx.DECQ(n)
		ctx.JNZ(lbl("src", g))
		label("store", g)
		// A masked store costs several whole ones on Zen 3: each half
		// whose lanes are all set is stored whole.
		ctx.LEAQ(operand.Mem{Base: dst, Index: dOff, Scale: 4}, dOff)
		for h, mask := range []reg.VecPhysical{dLo, dHi} {
			accs := [][]reg.VecPhysical{lo, hi}[h]
			part := fmt.Sprintf("part%d", h)
			stored := fmt.Sprintf("stored%d", h)
			ctx.VPTEST(ones, mask) // CF: every lane of mask set
			ctx.JCC(lbl(part, g))
			for _, whole := range []bool{true, false} {
				if !whole {
					label(part, g)
				}
				ctx.MOVQ(dOff, off)
				for i := range g {
					if i > 0 {
						ctx.ADDQ(ds, off)
					}
					at := operand.Mem{Base: off, Disp: 32 * h}
					if whole {
						ctx.VMOVUPS(accs[i], at)
					} else {
						ctx.VMASKMOVPS(accs[i], mask, at)
					}
				}
				if whole {
					ctx.JMP(lbl(stored, g))
				}
			}
			label(stored, g)
		}
		ctx.DECQ(vecs)
		ctx.JNZ(lbl("vec", g))
	})
}

// A col2imFrame is what the col2im kernels share: dst, the table, the
// strides of dst and col in bytes, and the bases of the channels summed
// side by side, col's first in bases[0].
type col2imFrame struct {
	dst, tab, ds, cs reg.GPPhysical
	bases            []reg.GPPhysical
}

// passes loads the frame's arguments and emits, for each g of
// Col2imGroups, the passes over g channels at a time while chans (a
// register or memory) counts at least g: pass(g) sums them, from
// bases[:g], then dst and the bases move on g channels. Then VZEROUPPER
// and RET.
func (f col2imFrame) passes(ctx *build.Context, name string, chans operand.Op, pass func(g int)) {
	ctx.Load(ctx.Param("dst"), f.dst)
	ctx.Load(ctx.Param("col"), f.bases[0])
	ctx.Load(ctx.Param("tab"), f.tab)
	ctx.Load(ctx.Param("dstStride"), f.ds)
	ctx.Load(ctx.Param("colStride"), f.cs)
	ctx.SHLQ(operand.U8(2), f.ds)
	ctx.SHLQ(operand.U8(2), f.cs)
	for gi, g := range Col2imGroups {
		next := "done"
		if gi+1 < len(Col2imGroups) {
			next = fmt.Sprintf("pass%d", Col2imGroups[gi+1])
		}
		ctx.Label(fmt.Sprintf("%spass%d", name, g))
		ctx.CMPQ(chans, operand.U8(g))
		ctx.JL(operand.LabelRef(name + next))
		for i := 1; i < g; i++ {
			ctx.LEAQ(operand.Mem{Base: f.bases[i-1], Index: f.cs, Scale: 1}, f.bases[i])
		}
		pass(g)
		// On to the next g channels.
		for range g {
			ctx.ADDQ(f.ds, f.dst)
		}
		ctx.LEAQ(operand.Mem{Base: f.bases[g-1], Index: f.cs, Scale: 1}, f.bases[0])
		ctx.SUBQ(operand.U8(g), chans)
		ctx.JMP(operand.LabelRef(fmt.Sprintf("%spass%d", name, g)))
	}
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}
