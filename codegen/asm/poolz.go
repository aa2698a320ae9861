package asm

import (
	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// PoolZ adds the AVX-512 2x2 pooling kernels to ctx, maxPool2x2Z and
// maxPool2x2BackwardZ: maxPool2x2 and maxPool2x2Backward for any output
// width. Each takes eight windows (16 floats of two rows) per ZMM and the
// rest of a row through masks, where the AVX2 kernels need eight windows
// a row and leave narrower planes, as LeNet-5's 10x10 maps, to Go.
func PoolZ(ctx *build.Context) {
	maxPool2x2Z(ctx)
	maxPool2x2BackwardZ(ctx, false)
	maxPool2x2BackwardZ(ctx, true)
}

// Registers of the pooling kernels.
var (
	zx, zx1 = reg.RSI, reg.R9 // the window rows of the input
	zoh     = reg.RCX         // output rows left
	zow     = reg.RDX
	zw      = reg.R8  // input row stride in bytes
	zj      = reg.R10 // the row's first window of the chunk
	zfull   = reg.R11 // windows in whole chunks of eight
	zones   = reg.Z31 // all bits set: the NaN of a window holding one
	zodd    = reg.K1  // the odd lanes
	ztail   = reg.K2  // the lanes of a row's last, partial chunk
)

// poolZHeader loads the shared arguments, sets ztail to the 2*(ow%8)
// floats and tailDy to the ow%8 outputs of a row's partial chunk, and
// zfull to the windows of its whole chunks.
func poolZHeader(ctx *build.Context, tailDy reg.GPPhysical) {
	ctx.Load(ctx.Param("ow"), zow)
	ctx.Load(ctx.Param("w"), zw)
	ctx.SHLQ(operand.U8(2), zw)
	ctx.MOVQ(zow, zfull)
	ctx.ANDQ(operand.I32(-8), zfull)
	// tailDy = 1<<(ow%8) - 1 and ztail = 1<<(2*(ow%8)) - 1, shifting by
	// CL before it holds oh.
	ctx.MOVQ(zow, zoh)
	ctx.SUBQ(zfull, zoh)
	ctx.MOVL(operand.U32(1), tailDy.As32())
	ctx.SHLL(reg.CL, tailDy.As32())
	ctx.DECL(tailDy.As32())
	ctx.ADDQ(zoh, zoh)
	ctx.MOVL(operand.U32(1), reg.EAX)
	ctx.SHLL(reg.CL, reg.EAX)
	ctx.DECL(reg.EAX)
	ctx.KMOVW(reg.EAX, ztail)
	ctx.Load(ctx.Param("oh"), zoh)
	ctx.VPTERNLOGD(operand.U8(0xFF), zones, zones, zones)
	ctx.MOVL(operand.U32(0xAAAA), reg.EAX)
	ctx.KMOVW(reg.EAX, zodd)
}

// windowMax sets m to each window's maximum in both lanes of the window,
// all bits set where the window holds a NaN, from its rows r0 and r1.
func windowMax(ctx *build.Context, r0, r1, m, p reg.VecPhysical, k reg.OpmaskPhysical) {
	ctx.VCMPPS(operand.U8(3), r1, r0, k) // unordered
	ctx.VMAXPS(r1, r0, m)
	ctx.VMOVAPS(zones, k, m)
	ctx.VPERMILPS(operand.U8(0xB1), m, p) // the neighbour's
	ctx.VCMPPS(operand.U8(3), p, m, k)
	ctx.VMAXPS(p, m, m)
	ctx.VMOVAPS(zones, k, m)
}

// poolZRows emits the loop over output rows and, in each, over chunks of
// eight windows and then the masked partial chunk: start begins a row,
// chunk gets whether it is the partial one, and next moves the row
// pointers on.
func poolZRows(ctx *build.Context, name string, start func(), chunk func(tail bool), next func()) {
	lbl := func(s string) operand.LabelRef { return operand.LabelRef(name + s) }
	ctx.Label(name + "row")
	ctx.TESTQ(zoh, zoh)
	ctx.JZ(lbl("done"))
	ctx.LEAQ(operand.Mem{Base: zx, Index: zw, Scale: 1}, zx1)
	start()
	ctx.XORQ(zj, zj)
	ctx.Label(name + "x8")
	ctx.CMPQ(zj, zfull)
	ctx.JGE(lbl("tail"))
	chunk(false)
	ctx.ADDQ(operand.U8(8), zj)
	ctx.JMP(lbl("x8"))
	ctx.Label(name + "tail")
	ctx.CMPQ(zj, zow)
	ctx.JGE(lbl("next"))
	chunk(true)
	ctx.Label(name + "next")
	next()
	ctx.LEAQ(operand.Mem{Base: zx1, Index: zw, Scale: 1}, zx)
	ctx.DECQ(zoh)
	ctx.JMP(lbl("row"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}

// loadRows loads the chunk's 16 floats of both window rows, zero-masked to
// ztail for the partial chunk.
func loadRows(ctx *build.Context, tail bool, r0, r1 reg.VecPhysical) {
	m0 := operand.Mem{Base: zx, Index: zj, Scale: 8}
	m1 := operand.Mem{Base: zx1, Index: zj, Scale: 8}
	if tail {
		ctx.VMOVUPS_Z(m0, ztail, r0)
		ctx.VMOVUPS_Z(m1, ztail, r1)
		return
	}
	ctx.VMOVUPS(m0, r0)
	ctx.VMOVUPS(m1, r1)
}

func maxPool2x2Z(ctx *build.Context) {
	const name = "maxPool2x2Z"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dst, src *float32, oh, ow, w int)")
	ctx.Pragma("noescape")
	ctx.Doc(name + " is maxPool2x2 for any ow >= 1 (AVX-512F).")
	dst, tailDst := reg.RDI, reg.RBX
	ctx.Load(ctx.Param("dst"), dst)
	ctx.Load(ctx.Param("src"), zx)
	poolZHeader(ctx, tailDst)
	ctx.KMOVW(tailDst.As32(), reg.K3)
	r0, r1, m, p := reg.Z0, reg.Z1, reg.Z2, reg.Z3
	even := reg.K4
	ctx.KNOTW(zodd, even)
	poolZRows(ctx, name, func() {}, func(tail bool) {
		loadRows(ctx, tail, r0, r1)
		windowMax(ctx, r0, r1, m, p, reg.K5)
		// The even lanes, side by side, then the eight (or ow%8) stored.
		ctx.VCOMPRESSPS(m, even, p)
		out := operand.Mem{Base: dst, Index: zj, Scale: 4}
		if tail {
			ctx.VMOVUPS(p, reg.K3, out)
		} else {
			ctx.VMOVUPS(p.AsY(), out)
		}
	}, func() {
		ctx.LEAQ(operand.Mem{Base: dst, Index: zow, Scale: 4}, dst)
	})
}

func maxPool2x2BackwardZ(ctx *build.Context, relu bool) {
	name := "maxPool2x2BackwardZ"
	doc := name + " is maxPool2x2Backward for any ow >= 1 (AVX-512F)."
	if relu {
		name = "maxPool2x2ReLUBackwardZ"
		doc = name + " is maxPool2x2ReLUBackward for any ow >= 1 (AVX-512F)."
	}
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(dx, x, dy *float32, oh, ow, w int)")
	ctx.Pragma("noescape")
	ctx.Doc(doc)
	dx, dx1, dy, tailDy := reg.RDI, reg.R12, reg.RBX, reg.R15
	ctx.Load(ctx.Param("dx"), dx)
	ctx.Load(ctx.Param("x"), zx)
	ctx.Load(ctx.Param("dy"), dy)
	poolZHeader(ctx, tailDy)
	r0, r1, m, p, g, out, zero := reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6
	k3, k4, k5, k6, k7 := reg.K3, reg.K4, reg.K5, reg.K6, reg.K7
	// passed keeps the lanes of k where a ReLU passed the gradient, where
	// r's bits are above 0 as an int32 (as elem.ReLUBackward tests).
	passed := func(r reg.VecPhysical, k reg.OpmaskPhysical) {
		if relu {
			ctx.VPCMPGTD(zero, r, k3)
			ctx.KANDW(k3, k, k)
		}
	}
	if relu {
		ctx.VPXORD(zero, zero, zero)
	}
	poolZRows(ctx, name, func() {
		ctx.LEAQ(operand.Mem{Base: dx, Index: zw, Scale: 1}, dx1)
	}, func(tail bool) {
		loadRows(ctx, tail, r0, r1)
		// g: each window's gradient in both of its lanes.
		grad := operand.Mem{Base: dy, Index: zj, Scale: 4}
		if tail {
			ctx.KMOVW(tailDy.As32(), k3)
			ctx.VMOVUPS_Z(grad, k3, g)
			ctx.VPMOVZXDQ(g.AsY(), g)
		} else {
			ctx.VPMOVZXDQ(grad, g)
		}
		ctx.VMOVSLDUP(g, g)
		windowMax(ctx, r0, r1, m, p, k3)
		ctx.VCMPPS(operand.U8(0), m, r0, k4) // a (even lanes), b (odd) equal to it
		ctx.VCMPPS(operand.U8(0), m, r1, k5) // c, d
		// Row 0: a where a is the maximum, b where b is and a is not.
		ctx.KSHIFTLW(operand.U8(1), k4, k6)
		ctx.KANDW(zodd, k6, k6) // a's test in b's lane
		ctx.KANDNW(k4, k6, k7)  // k4 &^ k6
		passed(r0, k7)
		ctx.VMOVAPS_Z(g, k7, out)
		store := func(base reg.GPPhysical) {
			mem := operand.Mem{Base: base, Index: zj, Scale: 8}
			if tail {
				ctx.VMOVUPS(out, ztail, mem)
			} else {
				ctx.VMOVUPS(out, mem)
			}
		}
		store(dx)
		// Row 1: c where c is and neither a nor b; d where none of a, b, c.
		ctx.KANDW(zodd, k4, k3)
		ctx.KORW(k3, k6, k6)                // a or b, in the odd lane
		ctx.KSHIFTRW(operand.U8(1), k6, k3) // ... in the even lane
		ctx.KANDNW(k5, k3, k4)              // c's test &^ (a or b)
		ctx.KANDNW(k4, zodd, k4)            // even lanes only
		ctx.KSHIFTLW(operand.U8(1), k5, k3) // c's test in d's lane
		ctx.KORW(k6, k3, k3)                // a, b or c
		ctx.KANDNW(zodd, k3, k3)            // odd lanes where none is
		ctx.KORW(k3, k4, k4)
		passed(r1, k4)
		ctx.VMOVAPS_Z(g, k4, out)
		store(dx1)
	}, func() {
		ctx.LEAQ(operand.Mem{Base: dy, Index: zow, Scale: 4}, dy)
		ctx.LEAQ(operand.Mem{Base: dx1, Index: zw, Scale: 1}, dx)
	})
}
