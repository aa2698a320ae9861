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

// ColSumF64 sets acc[j] to the sum of float64(x[s*ld+j]) over the rows s <
// rows, for j < len(acc), adding the rows in order, from zero: a linear
// layer's bias gradient, the sums of its output gradient's columns lo to
// lo+len(acc)-1 when x starts at column lo. The assembly keeps 16
// columns' sums in registers down the rows, and gives the Go code's bits.
// It panics if x is too short.
func ColSumF64(acc []float64, x []float32, rows, ld int) {
	checkColSum("ColSumF64", acc, rows, ld, x)
	if useAsm && len(acc) > 0 {
		colSumF64Asm(acc, x, rows, ld)
		return
	}
	clear(acc)
	for s := range rows {
		for j, v := range x[s*ld : s*ld+len(acc)] {
			acc[j] += float64(v)
		}
	}
}

// ColSumReLUF64 is ColSumF64 of x[s*ld+j] where a ReLU passed the
// gradient: where mask[s*ld+j]'s bits are above 0 as an int32
// (runtime.ReLUGrad), 0 elsewhere. It panics if x or mask is too short.
func ColSumReLUF64(acc []float64, x, mask []float32, rows, ld int) {
	checkColSum("ColSumReLUF64", acc, rows, ld, x, mask)
	if useAsm && len(acc) > 0 {
		colSumReLUF64Asm(acc, x, mask, rows, ld)
		return
	}
	clear(acc)
	for s := range rows {
		m := mask[s*ld : s*ld+len(acc)]
		for j, v := range x[s*ld : s*ld+len(acc)] {
			acc[j] += float64(reluGrad(v, m[j]))
		}
	}
}

// checkColSum panics unless rows and ld are not negative and each of xs
// holds rows rows of len(acc) floats, ld apart.
func checkColSum(name string, acc []float64, rows, ld int, xs ...[]float32) {
	need := 0
	if rows > 0 && len(acc) > 0 {
		need = (rows-1)*ld + len(acc)
	}
	for _, x := range xs {
		if rows < 0 || ld < 0 || len(x) < need {
			panic(fmt.Sprintf("elem: %s: %d rows of %d floats, %d apart, from %d floats", name, rows, len(acc), ld, len(x)))
		}
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
