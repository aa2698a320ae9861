package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The reductions, the ReLU backward and the float64 column sums of bias
// gradients of runtime/elem. A sum adds 32 floats at a time into 32 float32
// lanes (element i into lane i%32), folds the lanes pairwise (lane l with
// l+8, l+16 and l+24, then halves), and adds the elements past the last
// multiple of 32 in order: the Go fallbacks do the same additions, so both
// give the same bits.

// A sumKind is what sumKernel sums.
type sumKind int

const (
	sumPlain    sumKind = iota // x
	sumMasked                  // x where a ReLU passed it
	sumBNMasked                // dy where a ReLU passed it, and its products with z - mean
)

// sumKernel emits name(x[, mask] []float32) float32 or, for sumBNMasked,
// name(dy, out, z []float32, mean float32) (sdy, sdyz float32). Masked,
// element i counts only where mask[i]'s (out[i]'s) bits are above 0 as an
// int32 (where a ReLU passed its gradient).
func sumKernel(ctx *build.Context, name string, kind sumKind) {
	xName, mName := "x", "mask"
	switch kind {
	case sumPlain:
		leaf(ctx, name, "func(x []float32) float32", name+" returns the sum of x in Sum's order.")
	case sumMasked:
		leaf(ctx, name, "func(x, mask []float32) float32", name+" returns the sum of x where mask's bits are above 0, in SumReLU's order; mask must be at least as long as x.")
	case sumBNMasked:
		xName, mName = "dy", "out"
		leaf(ctx, name, "func(dy, out, z []float32, mean float32) (sdy, sdyz float32)",
			name+" returns the sums of g and g*(z[i]-mean), g = dy[i] where out[i]'s bits are above 0 and 0 elsewhere, in BNReLUSums's order; out and z must be at least as long as dy.")
	}
	masked, bn := kind != sumPlain, kind == sumBNMasked
	px, pm, pz, n := reg.RSI, reg.RDI, reg.RDX, reg.RCX
	ctx.Load(ctx.Param(xName).Base(), px)
	ctx.Load(ctx.Param(xName).Len(), n)
	if masked {
		ctx.Load(ctx.Param(mName).Base(), pm)
	}
	// acc sums x (g), accZ the products; t holds elements, m masks and
	// products.
	acc, accZ := ymms(0, 1, 2, 3), ymms(4, 5, 6, 7)
	t, m := ymms(8, 9, 10, 11), ymms(12, 13, 12, 13)
	mean, zero := reg.Y14, reg.Y15
	sums := [][]reg.VecPhysical{acc}
	if bn {
		ctx.Load(ctx.Param("z").Base(), pz)
		ctx.VBROADCASTSS(paramAddr(ctx, "mean"), mean)
		sums = append(sums, accZ)
	}
	for _, s := range sums {
		for _, a := range s {
			ctx.VXORPS(a, a, a)
		}
	}
	ctx.VPXOR(zero, zero, zero)
	// add adds 8 elements (or one, scalar) at byte offset off, masked, to
	// a and their products to az.
	add := func(off int, a, az, v, mv reg.VecPhysical, scalar bool) {
		mov := lanes(ctx, scalar)
		mov(operand.Mem{Base: px, Disp: off}, v)
		if masked {
			mov(operand.Mem{Base: pm, Disp: off}, mv)
			ctx.VPCMPGTD(half(zero, scalar), mv, mv)
			ctx.VANDPS(mv, v, v)
		}
		if scalar {
			ctx.VADDSS(v, a, a)
		} else {
			ctx.VADDPS(v, a, a)
		}
		if !bn {
			return
		}
		mov(operand.Mem{Base: pz, Disp: off}, mv)
		if scalar {
			ctx.VSUBSS(mean.AsX(), mv, mv)
			ctx.VMULSS(mv, v, mv)
			ctx.VADDSS(mv, az, az)
			return
		}
		ctx.VSUBPS(mean, mv, mv)
		ctx.VMULPS(mv, v, mv)
		ctx.VADDPS(mv, az, az)
	}
	advance := func(step int) {
		ctx.ADDQ(operand.U8(4*step), px)
		if masked {
			ctx.ADDQ(operand.U8(4*step), pm)
		}
		if bn {
			ctx.ADDQ(operand.U8(4*step), pz)
		}
		ctx.SUBQ(operand.U8(step), n)
	}
	ctx.Label(name + "32")
	ctx.CMPQ(n, operand.U8(32))
	ctx.JL(operand.LabelRef(name + "fold"))
	for h := range acc {
		add(32*h, acc[h], accZ[h], t[h], m[h], false)
	}
	advance(32)
	ctx.JMP(operand.LabelRef(name + "32"))

	ctx.Label(name + "fold")
	for _, s := range sums {
		ctx.VADDPS(s[1], s[0], s[0])
		ctx.VADDPS(s[3], s[2], s[2])
		ctx.VADDPS(s[2], s[0], s[0])
		x0, x1 := s[0].AsX(), s[1].AsX()
		ctx.VEXTRACTF128(operand.U8(1), s[0], x1)
		ctx.VADDPS(x1, x0, x0)
		ctx.VMOVHLPS(x0, x0, x1)
		ctx.VADDPS(x1, x0, x0)
		ctx.VMOVSHDUP(x0, x1)
		ctx.VADDSS(x1, x0, x0)
	}

	ctx.Label(name + "1")
	ctx.TESTQ(n, n)
	ctx.JZ(operand.LabelRef(name + "done"))
	add(0, half(acc[0], true), half(accZ[0], true), half(t[0], true), half(m[0], true), true)
	advance(1)
	ctx.JMP(operand.LabelRef(name + "1"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	for i, s := range sums {
		ctx.Store(s[0].AsX(), ctx.ReturnIndex(i))
	}
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

// colSumF64 emits name(acc []float64, x[, mask] []float32, rows, ld int):
// acc[j] = the sum of float64(x[s*ld+j]) over s < rows, in order from zero,
// with masked only where mask[s*ld+j]'s bits are above 0 as an int32: a
// linear layer's bias gradient, the column sums of its output gradient.
// It runs down 16 columns at a time in four YMM registers of float64, then
// 4, then 1, so that a column's sum stays in a register over the rows.
func colSumF64(ctx *build.Context, name string, masked bool) {
	sig := "func(acc []float64, x []float32, rows, ld int)"
	doc := name + " sets acc[j] to the sum over s < rows of float64(x[s*ld+j]), for j < len(acc)."
	if masked {
		sig = "func(acc []float64, x, mask []float32, rows, ld int)"
		doc = name + " sets acc[j] to the sum over s < rows of float64(x[s*ld+j]) where mask[s*ld+j]'s bits are above 0, for j < len(acc)."
	}
	leaf(ctx, name, sig, doc)
	pa, px, pm, n := reg.RDX, reg.RSI, reg.RDI, reg.RCX
	rows, ld := reg.R8, reg.R9
	r, p, q := reg.R10, reg.R11, reg.R12 // rows left, walkers down x and mask
	ctx.Load(ctx.Param("acc").Base(), pa)
	ctx.Load(ctx.Param("acc").Len(), n)
	ctx.Load(ctx.Param("x").Base(), px)
	ctx.Load(ctx.Param("rows"), rows)
	ctx.Load(ctx.Param("ld"), ld)
	ctx.SHLQ(operand.U8(2), ld)
	zero := reg.Y15
	if masked {
		ctx.Load(ctx.Param("mask").Base(), pm)
		ctx.VPXOR(zero, zero, zero)
	}
	for _, w := range []int{16, 4, 1} {
		label := fmt.Sprintf("%s%d", name, w)
		scalar := w == 1
		accs := ymms(0, 1, 2, 3)[:max(w/4, 1)]
		ctx.Label(label)
		ctx.CMPQ(n, operand.U8(w))
		ctx.JL(operand.LabelRef(label + "done"))
		for _, a := range accs {
			ctx.VXORPD(a, a, a)
		}
		ctx.MOVQ(rows, r)
		ctx.MOVQ(px, p)
		if masked {
			ctx.MOVQ(pm, q)
		}
		ctx.Label(label + "row")
		ctx.TESTQ(r, r)
		ctx.JZ(operand.LabelRef(label + "store"))
		// add adds the floats in v (4, or 1 with scalar) to accs[h].
		add := func(v reg.VecPhysical, h int) {
			t := ymm(6, scalar)
			if scalar {
				ctx.VCVTSS2SD(v, t, t)
				ctx.VADDSD(t, half(accs[h], true), half(accs[h], true))
				return
			}
			ctx.VCVTPS2PD(v.AsX(), t)
			ctx.VADDPD(t, accs[h], accs[h])
		}
		switch {
		case !masked && !scalar:
			for h := range accs {
				t := ymm(6, false)
				ctx.VCVTPS2PD(operand.Mem{Base: p, Disp: 16 * h}, t)
				ctx.VADDPD(t, accs[h], accs[h])
			}
		case !masked:
			v := ymm(4, true)
			ctx.VMOVSS(operand.Mem{Base: p}, v)
			add(v, 0)
		default:
			// Eight floats (or four, or one) at a time, the mask's
			// comparison clearing those a ReLU stopped.
			step := min(w, 8)
			small := w < 8
			for g := 0; g < w; g += step {
				v, m := ymm(4, small), ymm(5, small)
				mov := func(src, dst operand.Op) { ctx.VMOVUPS(src, dst) }
				if scalar {
					mov = func(src, dst operand.Op) { ctx.VMOVSS(src, dst) }
				}
				mov(operand.Mem{Base: p, Disp: 4 * g}, v)
				mov(operand.Mem{Base: q, Disp: 4 * g}, m)
				ctx.VPCMPGTD(half(zero, small), m, m)
				ctx.VANDPS(m, v, v)
				add(v, g/4)
				if w >= 8 {
					ctx.VEXTRACTF128(operand.U8(1), v, v.AsX())
					add(v, g/4+1)
				}
			}
		}
		ctx.ADDQ(ld, p)
		if masked {
			ctx.ADDQ(ld, q)
		}
		ctx.DECQ(r)
		ctx.JMP(operand.LabelRef(label + "row"))
		ctx.Label(label + "store")
		for h, a := range accs {
			if scalar {
				ctx.VMOVSD(half(a, true), operand.Mem{Base: pa})
			} else {
				ctx.VMOVUPD(a, operand.Mem{Base: pa, Disp: 32 * h})
			}
		}
		ctx.ADDQ(operand.U8(8*w), pa)
		ctx.ADDQ(operand.U8(4*w), px)
		if masked {
			ctx.ADDQ(operand.U8(4*w), pm)
		}
		ctx.SUBQ(operand.U8(w), n)
		ctx.JMP(operand.LabelRef(label))
		ctx.Label(label + "done")
	}
	ctx.VZEROUPPER()
	ctx.RET()
}

// sumSqF64 emits sumSqF64(x []float32) (s1, s2 float64): the sum of x and
// of its squares in float64, as SumSqF64 orders them: 16 lanes, element i
// into lane i%16 (the square by a fused multiply-add), the lanes folded
// (lane l with l+4, l+8 and l+12, then l with l+2, then 0 with 1), then
// the elements past the last multiple of 16 in order.
func sumSqF64(ctx *build.Context) {
	const name = "sumSqF64"
	leaf(ctx, name, "func(x []float32) (s1, s2 float64)", name+" returns the sums of x and of its squares in float64, in SumSqF64's order.")
	px, n := reg.RSI, reg.RCX
	ctx.Load(ctx.Param("x").Base(), px)
	ctx.Load(ctx.Param("x").Len(), n)
	acc, acc2, t := ymms(0, 1, 2, 3), ymms(4, 5, 6, 7), ymms(8, 9, 10, 11)
	for _, a := range append(append([]reg.VecPhysical{}, acc...), acc2...) {
		ctx.VXORPD(a, a, a)
	}
	ctx.Label(name + "16")
	ctx.CMPQ(n, operand.U8(16))
	ctx.JL(operand.LabelRef(name + "fold"))
	for h := range acc {
		ctx.VCVTPS2PD(operand.Mem{Base: px, Disp: 16 * h}, t[h])
		ctx.VADDPD(t[h], acc[h], acc[h])
		ctx.VFMADD231PD(t[h], t[h], acc2[h])
	}
	ctx.ADDQ(operand.U8(64), px)
	ctx.SUBQ(operand.U8(16), n)
	ctx.JMP(operand.LabelRef(name + "16"))

	ctx.Label(name + "fold")
	for _, s := range [][]reg.VecPhysical{acc, acc2} {
		ctx.VADDPD(s[1], s[0], s[0])
		ctx.VADDPD(s[3], s[2], s[2])
		ctx.VADDPD(s[2], s[0], s[0])
		x0, x1 := s[0].AsX(), s[1].AsX()
		ctx.VEXTRACTF128(operand.U8(1), s[0], x1)
		ctx.VADDPD(x1, x0, x0)
		ctx.VUNPCKHPD(x0, x0, x1)
		ctx.VADDSD(x1, x0, x0)
	}
	v := t[0].AsX()
	ctx.Label(name + "1")
	ctx.TESTQ(n, n)
	ctx.JZ(operand.LabelRef(name + "done"))
	ctx.VCVTSS2SD(operand.Mem{Base: px}, v, v)
	ctx.VADDSD(v, acc[0].AsX(), acc[0].AsX())
	ctx.VFMADD231SD(v, v, acc2[0].AsX())
	ctx.ADDQ(operand.U8(4), px)
	ctx.DECQ(n)
	ctx.JMP(operand.LabelRef(name + "1"))
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.Store(acc[0].AsX(), ctx.ReturnIndex(0))
	ctx.Store(acc2[0].AsX(), ctx.ReturnIndex(1))
	ctx.RET()
}
