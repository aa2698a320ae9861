package elem

import (
	"fmt"
	"math"
)

// Sum returns the sum of x in float32: 32 lanes, element i into lane i%32,
// the lanes folded pairwise (lane l with l+8, l+16 and l+24, then lane l
// with l+4, l+2 and l+1), then the elements past the last multiple of 32
// in order. The assembly and the Go code add in this order and give the
// same bits; with 32 independent sums instead of one chain, the assembly
// is not held up by the latency of each addition.
func Sum(x []float32) float32 {
	if useAsm && len(x) > 0 {
		return sumAsm(x)
	}
	return sumGo(x, nil)
}

// SumReLU is Sum of x[i] where a ReLU passed the gradient: where mask[i]'s
// bits are above 0 as an int32 (runtime.ReLUGrad), 0 elsewhere. It panics
// if mask is shorter than x.
func SumReLU(x, mask []float32) float32 {
	if len(mask) < len(x) {
		panic(fmt.Sprintf("elem: SumReLU: len(x) = %d, len(mask) = %d", len(x), len(mask)))
	}
	if useAsm && len(x) > 0 {
		return sumReLUAsm(x, mask)
	}
	return sumGo(x, mask[:len(x)])
}

// sumGo is Sum, or SumReLU when mask is not nil, in Go.
func sumGo(x, mask []float32) float32 {
	at := func(i int) float32 {
		if mask == nil {
			return x[i]
		}
		return reluGrad(x[i], mask[i])
	}
	var acc [32]float32
	i := 0
	for ; i+32 <= len(x); i += 32 {
		for l := range acc {
			acc[l] += at(i + l)
		}
	}
	s := fold32(&acc)
	for ; i < len(x); i++ {
		s += at(i)
	}
	return s
}

// fold32 adds Sum's 32 lanes in Sum's order: lane l with l+8, l+16 and
// l+24, then lane l with l+4, l+2 and l+1.
func fold32(acc *[32]float32) float32 {
	var v [8]float32
	for l := range v {
		v[l] = (acc[l] + acc[l+8]) + (acc[l+16] + acc[l+24])
	}
	for l := range 4 {
		v[l] += v[l+4]
	}
	for l := range 2 {
		v[l] += v[l+2]
	}
	return v[0] + v[1]
}

// ReLUBackward sets dx[i] = dy[i] where the ReLU's output y[i] has bits
// above 0 as an int32 (it passed the gradient; runtime.ReLUGrad), and 0
// elsewhere. It panics if y or dy is shorter than dx.
func ReLUBackward(dx, y, dy []float32) {
	if len(y) < len(dx) || len(dy) < len(dx) {
		panic(fmt.Sprintf("elem: ReLUBackward: len(dx) = %d, len(y) = %d, len(dy) = %d", len(dx), len(y), len(dy)))
	}
	if useAsm && len(dx) > 0 {
		reluBackwardAsm(dx, y, dy)
		return
	}
	y, dy = y[:len(dx)], dy[:len(dx)]
	for i := range dx {
		dx[i] = reluGrad(dy[i], y[i])
	}
}

// AddF64 sets acc[i] += float64(x[i]) for i < len(acc): one sample's row of
// a linear layer's bias gradient, the channels side by side. It panics if
// x is shorter than acc.
func AddF64(acc []float64, x []float32) {
	if len(x) < len(acc) {
		panic(fmt.Sprintf("elem: AddF64: len(acc) = %d, len(x) = %d", len(acc), len(x)))
	}
	if useAsm && len(acc) > 0 {
		addF64Asm(acc, x)
		return
	}
	x = x[:len(acc)]
	for i, v := range x {
		acc[i] += float64(v)
	}
}

// AddReLUF64 is AddF64 of x[i] where a ReLU passed the gradient: where
// mask[i]'s bits are above 0 as an int32 (runtime.ReLUGrad), 0 elsewhere.
// It panics if x or mask is shorter than acc.
func AddReLUF64(acc []float64, x, mask []float32) {
	if len(x) < len(acc) || len(mask) < len(acc) {
		panic(fmt.Sprintf("elem: AddReLUF64: len(acc) = %d, len(x) = %d, len(mask) = %d", len(acc), len(x), len(mask)))
	}
	if useAsm && len(acc) > 0 {
		addReLUF64Asm(acc, x, mask)
		return
	}
	x, mask = x[:len(acc)], mask[:len(acc)]
	for i, v := range x {
		acc[i] += float64(reluGrad(v, mask[i]))
	}
}

// SumSqF64 returns the sums of x and of its squares in float64, as the
// batch statistics of a convolution's output channel add them: 16 lanes,
// element i into lane i%16 (its square by a fused multiply-add), the lanes
// folded (lane l with l+4, l+8 and l+12, then lane l with l+2, then lane 0
// with lane 1), then the elements past the last multiple of 16 in order.
// The assembly and the Go code give the same bits; the lanes keep the
// additions of one element from waiting on the last.
func SumSqF64(x []float32) (s1, s2 float64) {
	if useAsm && len(x) > 0 {
		return sumSqF64Asm(x)
	}
	var a, b [16]float64
	i := 0
	for ; i+16 <= len(x); i += 16 {
		for l := range a {
			v := float64(x[i+l])
			a[l] += v
			b[l] = math.FMA(v, v, b[l])
		}
	}
	s1, s2 = fold16(&a), fold16(&b)
	for _, f := range x[i:] {
		v := float64(f)
		s1 += v
		s2 = math.FMA(v, v, s2)
	}
	return s1, s2
}

// fold16 adds SumSqF64's 16 lanes in its order.
func fold16(acc *[16]float64) float64 {
	var t [4]float64
	for l := range t {
		t[l] = (acc[l] + acc[l+4]) + (acc[l+8] + acc[l+12])
	}
	return (t[0] + t[2]) + (t[1] + t[3])
}
