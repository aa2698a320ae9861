package elem

import (
	"fmt"
	"math"
)

// BNReLUSums returns the two sums the backward of a fused conv +
// batch-norm + ReLU needs over one channel of one sample:
//
//	sdy  = sum of g
//	sdyx = sum of g*(z[i]-mean)*istd
//
// where g = dy[i] where the ReLU's output out[i] is above 0, and 0
// elsewhere, and z is the convolution's output. The sums are float64, over
// eight lanes (element i into lane i%8, the lanes added pairwise at the
// end), then the elements past the last multiple of eight in order: the
// assembly and the Go code add in this order and give the same bits. It
// panics if out or z is shorter than dy.
func BNReLUSums(dy, out, z []float32, mean, istd float64) (sdy, sdyx float64) {
	if len(out) < len(dy) || len(z) < len(dy) {
		panic(fmt.Sprintf("elem: BNReLUSums: len(dy) = %d, len(out) = %d, len(z) = %d", len(dy), len(out), len(z)))
	}
	if useAsm && len(dy) > 0 {
		return bnReLUSumsAsm(dy, out, z, mean, istd)
	}
	out, z = out[:len(dy)], z[:len(dy)]
	var s, x [8]float64
	i := 0
	for ; i+8 <= len(dy); i += 8 {
		for l := range 8 {
			g := float64(reluGrad(dy[i+l], out[i+l]))
			s[l] += g
			x[l] += float64(float64(g*(float64(z[i+l])-mean)) * istd)
		}
	}
	sdy = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
	sdyx = ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]))
	for ; i < len(dy); i++ {
		g := float64(reluGrad(dy[i], out[i]))
		sdy += g
		sdyx += float64(float64(g*(float64(z[i])-mean)) * istd)
	}
	return sdy, sdyx
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
