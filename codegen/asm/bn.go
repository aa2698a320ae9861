package asm

import (
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// bnReLUDz is the input gradient of a fused conv + batch-norm + ReLU
// (runtime/elem's BNReLUDz; its sums are sumKernel's). It is float32, 32
// elements at a time, from coefficients the caller computes once per
// channel in float64, with the ReLU's mask taken from the forward output's
// bits, and does exactly the operations of its Go fallback, in the same
// order, so both give the same bits.

// Registers of bnReLUDz.
var bnDy, bnOut, bnZ, bnDz = reg.RSI, reg.RDI, reg.RDX, reg.R8

func bnReLUDz(ctx *build.Context) {
	leaf(ctx, "bnReLUDz", "func(dz, dy, out, z []float32, mean, istd, a, b, c float32)",
		"bnReLUDz sets dz[i] = (a*g - b*((z[i]-mean)*istd)) - c for i < len(dz), g = dy[i] where out[i] > 0 and 0 elsewhere; dy, out and z must be at least as long.")
	ctx.Load(ctx.Param("dz").Base(), bnDz)
	ctx.Load(ctx.Param("dz").Len(), vn)
	ctx.Load(ctx.Param("dy").Base(), bnDy)
	ctx.Load(ctx.Param("out").Base(), bnOut)
	ctx.Load(ctx.Param("z").Base(), bnZ)
	mean, istd, a, b, c := reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12
	for _, p := range []struct {
		name string
		y    reg.VecPhysical
	}{{"mean", mean}, {"istd", istd}, {"a", a}, {"b", b}, {"c", c}} {
		ctx.VBROADCASTSS(paramAddr(ctx, p.name), p.y)
	}
	ctx.VXORPS(yz, yz, yz)
	stream(ctx, "bnReLUDz", []reg.GPPhysical{bnDz, bnDy, bnOut, bnZ}, func(v reg.VecPhysical, off int, scalar bool) {
		t := ymm(4+off/32, scalar) // the mask, then z's term
		mem := func(base reg.GPPhysical) operand.Mem { return operand.Mem{Base: base, Disp: off} }
		mov := lanes(ctx, scalar)
		op := func(vec, ss func(...operand.Op), x, y, z operand.Op) {
			if scalar {
				if r, ok := x.(reg.VecPhysical); ok {
					x = r.AsX()
				}
				ss(x, y, z)
				return
			}
			vec(x, y, z)
		}
		mov(mem(bnOut), t)
		ctx.VPCMPGTD(half(yz, scalar), t, t) // out's bits > 0: ReLU passed it
		if scalar {
			mov(mem(bnDy), v)
			ctx.VANDPS(t, v, v)
		} else {
			ctx.VANDPS(mem(bnDy), t, v)
		}
		mov(mem(bnZ), t)
		op(ctx.VSUBPS, ctx.VSUBSS, mean, t, t) // z - mean
		op(ctx.VMULPS, ctx.VMULSS, istd, t, t) // xh
		op(ctx.VMULPS, ctx.VMULSS, b, t, t)    // b*xh
		op(ctx.VMULPS, ctx.VMULSS, a, v, v)    // a*g
		op(ctx.VSUBPS, ctx.VSUBSS, t, v, v)
		op(ctx.VSUBPS, ctx.VSUBSS, c, v, v)
		mov(v, mem(bnDz))
	})
}
