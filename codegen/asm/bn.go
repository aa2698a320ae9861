package asm

import (
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The batch-norm backward kernels of a fused conv + batch-norm + ReLU
// (runtime/elem's BNReLUSums and BNReLUDz). The sums add in float64, eight
// elements at a time; the gradient is float32, 32 at a time, from
// coefficients the caller computes once per channel in float64. Both take
// the ReLU's mask from the forward output's bits and do exactly the
// operations of their Go fallbacks, in the same order, so both give the
// same bits.

// Registers of the BN kernels.
var (
	bnDy, bnOut, bnZ, bnDz = reg.RSI, reg.RDI, reg.RDX, reg.R8
	bnN                    = vn
	bnZero                 = reg.Y6
)

// bnGrad loads the masked gradient of eight elements (one with scalar) as
// float64 into lo (elements 0..3) and hi (4..7), and z into zlo, zhi. It
// uses Y7 to Y9 and Y12.
func bnGrad(ctx *build.Context, scalar bool, lo, hi, zlo, zhi reg.VecPhysical) {
	g, o, m, z := ymm(7, scalar), ymm(8, scalar), ymm(9, scalar), ymm(12, scalar)
	mov := lanes(ctx, scalar)
	mov(operand.Mem{Base: bnDy}, g)
	mov(operand.Mem{Base: bnOut}, o)
	ctx.VPCMPGTD(half(bnZero, scalar), o, m) // out's bits > 0: ReLU passed it
	ctx.VANDPS(m, g, g)
	mov(operand.Mem{Base: bnZ}, z)
	if scalar {
		ctx.VCVTSS2SD(g, g, lo.AsX())
		ctx.VCVTSS2SD(z, z, zlo.AsX())
		return
	}
	ctx.VCVTPS2PD(g.AsX(), lo)
	ctx.VEXTRACTF128(operand.U8(1), g, g.AsX())
	ctx.VCVTPS2PD(g.AsX(), hi)
	ctx.VCVTPS2PD(z.AsX(), zlo)
	ctx.VEXTRACTF128(operand.U8(1), z, z.AsX())
	ctx.VCVTPS2PD(z.AsX(), zhi)
}

// bnLoop emits a loop over bnN elements, eight at a time and then one at
// a time, advancing the pointers ptrs; body emits one step.
func bnLoop(ctx *build.Context, name string, ptrs []reg.GPPhysical, body func(scalar bool), between func()) {
	for _, scalar := range []bool{false, true} {
		step := 8
		label := name + "8"
		if scalar {
			step, label = 1, name+"1"
		}
		ctx.Label(label)
		ctx.CMPQ(bnN, operand.U8(step))
		ctx.JL(operand.LabelRef(label + "done"))
		body(scalar)
		for _, p := range ptrs {
			ctx.ADDQ(operand.U8(4*step), p)
		}
		ctx.SUBQ(operand.U8(step), bnN)
		ctx.JMP(operand.LabelRef(label))
		ctx.Label(label + "done")
		if !scalar && between != nil {
			between()
		}
	}
}

// broadcastSD loads the float64 parameter name into all lanes of y.
func broadcastSD(ctx *build.Context, name string, y reg.VecPhysical) {
	ctx.Load(ctx.Param(name), y.AsX())
	ctx.VBROADCASTSD(y.AsX(), y)
}

func bnReLUSums(ctx *build.Context) {
	leaf(ctx, "bnReLUSums", "func(dy, out, z []float32, mean, istd float64) (sdy, sdyx float64)",
		"bnReLUSums returns the sums of g and g*(z-mean)*istd over i < len(dy), g = dy[i] where out[i] > 0 and 0 elsewhere, in BNReLUSums's order; out and z must be at least as long.")
	ctx.Load(ctx.Param("dy").Base(), bnDy)
	ctx.Load(ctx.Param("dy").Len(), bnN)
	ctx.Load(ctx.Param("out").Base(), bnOut)
	ctx.Load(ctx.Param("z").Base(), bnZ)
	mean, istd := reg.Y4, reg.Y5
	broadcastSD(ctx, "mean", mean)
	broadcastSD(ctx, "istd", istd)
	s0, s1, x0, x1 := reg.Y0, reg.Y1, reg.Y2, reg.Y3
	for _, r := range []reg.VecPhysical{s0, s1, x0, x1} {
		ctx.VXORPD(r, r, r)
	}
	ctx.VPXOR(bnZero, bnZero, bnZero)
	bnLoop(ctx, "bnReLUSums", []reg.GPPhysical{bnDy, bnOut, bnZ}, func(scalar bool) {
		lo, hi, zlo, zhi := ymm(10, scalar), ymm(11, scalar), ymm(13, scalar), ymm(14, scalar)
		bnGrad(ctx, scalar, lo, hi, zlo, zhi)
		if scalar {
			ctx.VADDSD(lo, s0.AsX(), s0.AsX())
			ctx.VSUBSD(mean.AsX(), zlo, zlo)
			ctx.VMULSD(zlo, lo, zlo)
			ctx.VMULSD(istd.AsX(), zlo, zlo)
			ctx.VADDSD(zlo, x0.AsX(), x0.AsX())
			return
		}
		ctx.VADDPD(lo, s0, s0)
		ctx.VADDPD(hi, s1, s1)
		for _, p := range [][2]reg.VecPhysical{{lo, zlo}, {hi, zhi}} {
			ctx.VSUBPD(mean, p[1], p[1])
			ctx.VMULPD(p[1], p[0], p[1])
			ctx.VMULPD(istd, p[1], p[1])
		}
		ctx.VADDPD(zlo, x0, x0)
		ctx.VADDPD(zhi, x1, x1)
	}, func() {
		// Lanes l and l+4, then l and l+2, then the two left.
		for _, p := range [][2]reg.VecPhysical{{s0, s1}, {x0, x1}} {
			ctx.VADDPD(p[1], p[0], p[0])
			ctx.VEXTRACTF128(operand.U8(1), p[0], p[1].AsX())
			ctx.VADDPD(p[1].AsX(), p[0].AsX(), p[0].AsX())
			ctx.VHADDPD(p[0].AsX(), p[0].AsX(), p[0].AsX())
		}
	})
	ctx.VZEROUPPER()
	ctx.Store(s0.AsX(), ctx.Return("sdy"))
	ctx.Store(x0.AsX(), ctx.Return("sdyx"))
	ctx.RET()
}

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
