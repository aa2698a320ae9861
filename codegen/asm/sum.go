package asm

import (
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The reductions and the ReLU backward of runtime/elem. A sum adds 32
// floats at a time into 32 float32 lanes (element i into lane i%32), folds
// the lanes pairwise (lane l with l+8, l+16 and l+24, then halves), and adds
// the elements past the last multiple of 32 in order: the Go fallbacks do
// the same additions, so both give the same bits.

// sumKernel emits name(x[, mask] []float32) float32; with masked, element
// i counts only where mask[i]'s bits are above 0 as an int32 (where a ReLU
// passed its gradient).
func sumKernel(ctx *build.Context, name string, masked bool) {
	sig, doc := "func(x []float32) float32", name+" returns the sum of x in Sum's order."
	if masked {
		sig, doc = "func(x, mask []float32) float32", name+" returns the sum of x where mask's bits are above 0, in SumReLU's order; mask must be at least as long as x."
	}
	leaf(ctx, name, sig, doc)
	px, pm, n := reg.RSI, reg.RDI, reg.RCX
	ctx.Load(ctx.Param("x").Base(), px)
	ctx.Load(ctx.Param("x").Len(), n)
	if masked {
		ctx.Load(ctx.Param("mask").Base(), pm)
	}
	acc := ymms(0, 1, 2, 3)
	zero, t, m := reg.Y4, ymms(5, 6, 7, 8), ymms(9, 10, 11, 12)
	for _, a := range acc {
		ctx.VXORPS(a, a, a)
	}
	ctx.VPXOR(zero, zero, zero)
	// load puts 8 elements (or one, scalar) of x at byte offset off, masked,
	// into v.
	load := func(off int, v, mv reg.VecPhysical, scalar bool) {
		mov := lanes(ctx, scalar)
		mov(operand.Mem{Base: px, Disp: off}, v)
		if masked {
			mov(operand.Mem{Base: pm, Disp: off}, mv)
			ctx.VPCMPGTD(half(zero, scalar), mv, mv)
			ctx.VANDPS(mv, v, v)
		}
	}
	advance := func(step int) {
		ctx.ADDQ(operand.U8(4*step), px)
		if masked {
			ctx.ADDQ(operand.U8(4*step), pm)
		}
		ctx.SUBQ(operand.U8(step), n)
	}
	ctx.Label(name + "32")
	ctx.CMPQ(n, operand.U8(32))
	ctx.JL(operand.LabelRef(name + "fold"))
	for h := range acc {
		load(32*h, t[h], m[h], false)
		ctx.VADDPS(t[h], acc[h], acc[h])
	}
	advance(32)
	ctx.JMP(operand.LabelRef(name + "32"))

	ctx.Label(name + "fold")
	ctx.VADDPS(acc[1], acc[0], acc[0])
	ctx.VADDPS(acc[3], acc[2], acc[2])
	ctx.VADDPS(acc[2], acc[0], acc[0])
	x0, x1 := acc[0].AsX(), acc[1].AsX()
	ctx.VEXTRACTF128(operand.U8(1), acc[0], x1)
	ctx.VADDPS(x1, x0, x0)
	ctx.VMOVHLPS(x0, x0, x1)
	ctx.VADDPS(x1, x0, x0)
	ctx.VMOVSHDUP(x0, x1)
	ctx.VADDSS(x1, x0, x0)

	ctx.Label(name + "1")
	ctx.TESTQ(n, n)
	ctx.JZ(operand.LabelRef(name + "done"))
	load(0, half(t[0], true), half(m[0], true), true)
	ctx.VADDSS(t[0].AsX(), x0, x0)
	advance(1)
	ctx.JMP(operand.LabelRef(name + "1"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.Store(x0, ctx.ReturnIndex(0))
	ctx.RET()
}

func reluBackward(ctx *build.Context) {
	leaf(ctx, "reluBackward", "func(dx, y, dy []float32)",
		"reluBackward sets dx[i] = dy[i] where y[i]'s bits are above 0 as an int32, and 0 elsewhere, for i < len(dx); y and dy must be at least as long.")
	pdx := reg.RDX
	zero := reg.Y15
	ctx.Load(ctx.Param("dx").Base(), pdx)
	ctx.Load(ctx.Param("dx").Len(), vn)
	ctx.Load(ctx.Param("y").Base(), vx)
	ctx.Load(ctx.Param("dy").Base(), vy)
	ctx.VPXOR(zero, zero, zero)
	stream(ctx, "reluBackward", []reg.GPPhysical{pdx, vx, vy}, func(m reg.VecPhysical, off int, scalar bool) {
		mov := lanes(ctx, scalar)
		g := ymm(4+off/32, scalar)
		mov(operand.Mem{Base: vx, Disp: off}, m)
		mov(operand.Mem{Base: vy, Disp: off}, g)
		ctx.VPCMPGTD(half(zero, scalar), m, m)
		ctx.VANDPS(m, g, g)
		mov(g, operand.Mem{Base: pdx, Disp: off})
	})
}
