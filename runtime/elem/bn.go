package elem

import (
	"fmt"
	"math"
)

// BNReLUSums returns the two sums the backward of a fused conv +
// batch-norm + ReLU needs over one channel of one sample:
//
//	sdy  = sum of g
//	sdyz = sum of g*(z[i]-mean)
//
// where g = dy[i] where the ReLU's output out[i] is above 0, and 0
// elsewhere, and z is the convolution's output. The sums are float32, in
// Sum's order (32 lanes, folded pairwise, then the elements past the last
// multiple of 32); the caller adds them over the batch in float64. The
// assembly and the Go code give the same bits. It panics if out or z is
// shorter than dy.
func BNReLUSums(dy, out, z []float32, mean float32) (sdy, sdyz float32) {
	if len(out) < len(dy) || len(z) < len(dy) {
		panic(fmt.Sprintf("elem: BNReLUSums: len(dy) = %d, len(out) = %d, len(z) = %d", len(dy), len(out), len(z)))
	}
	if useAsm && len(dy) > 0 {
		return bnReLUSumsAsm(dy, out, z, mean)
	}
	out, z = out[:len(dy)], z[:len(dy)]
	var s, x [32]float32
	i := 0
	for ; i+32 <= len(dy); i += 32 {
		for l := range s {
			g := reluGrad(dy[i+l], out[i+l])
			s[l] += g
			x[l] += float32(g * (z[i+l] - mean))
		}
	}
	sdy, sdyz = fold32(&s), fold32(&x)
	for ; i < len(dy); i++ {
		g := reluGrad(dy[i], out[i])
		sdy += g
		sdyz += float32(g * (z[i] - mean))
	}
	return sdy, sdyz
}

// BNReLUDz sets the gradient of the convolution's output of one channel of
// one sample, from BNReLUSums's sums over the batch:
//
//	dz[i] = (a*g - b*xh) - c,  xh = (z[i]-mean)*istd
//
// with g as in BNReLUSums and, for cnt elements per channel in the batch,
// a = gamma*istd, b = a*sdyx/cnt and c = a*sdy/cnt, which the caller
// computes once per channel in float64. The elements are float32, one
// rounding per operation, so the assembly (which does 32 at a time) gives
// the same bits. dz may be dy. It panics if dy, out or z is shorter than
// dz.
func BNReLUDz(dz, dy, out, z []float32, mean, istd, a, b, c float32) {
	if len(dy) < len(dz) || len(out) < len(dz) || len(z) < len(dz) {
		panic(fmt.Sprintf("elem: BNReLUDz: len(dz) = %d, len(dy) = %d, len(out) = %d, len(z) = %d", len(dz), len(dy), len(out), len(z)))
	}
	if useAsm && len(dz) > 0 {
		bnReLUDzAsm(dz, dy, out, z, mean, istd, a, b, c)
		return
	}
	dy, out, z = dy[:len(dz)], out[:len(dz)], z[:len(dz)]
	for i := range dz {
		g := reluGrad(dy[i], out[i])
		xh := float32(float32(z[i]-mean) * istd)
		dz[i] = float32(float32(a*g)-float32(b*xh)) - c
	}
}

// reluGrad is runtime.ReLUGrad (which this package cannot import): dy where
// y's bits are above 0 as an int32, 0 elsewhere, without a branch.
func reluGrad(dy, y float32) float32 {
	return math.Float32frombits(math.Float32bits(dy) & uint32(-int64(int32(math.Float32bits(y)))>>63))
}
