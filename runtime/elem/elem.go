package elem

import (
	"fmt"
	"math"

	"github.com/cnnc/cnnc/internal/tanhcoef"
)

// useAsm reports whether the assembly kernels run. It is set once at
// start-up (see kernel_amd64.go) and switched only by tests.
var useAsm = asmSupported()

// UsesAssembly reports whether this process runs the AVX2 assembly kernels
// rather than the pure Go ones.
func UsesAssembly() bool { return useAsm }

// An sgdKernel is a generated SGD update; each variant reads only the
// arguments it needs.
type sgdKernel func(w, g, v []float32, lr, mu, wd float32)

// SGD applies one step of runtime.SGD's update to the weights w with
// gradient g and momentum buffer v (nil without momentum), element by
// element:
//
//	d = g + wd*w                 if wd != 0
//	v = d                        if first, else v = mu*v + d   (with momentum)
//	v = 0                        if |v| < 0x1p-126             (with momentum)
//	d = d + mu*v                 if nesterov, else d = v       (with momentum)
//	w = w - lr*d
//
// The momentum is flushed to zero where it falls below the smallest normal
// float32. Where a weight's gradient stays zero (a ReLU unit that no longer
// fires), its momentum would otherwise shrink into the subnormals and stay
// there, 0.9 times a few units of the last place rounding back to itself,
// and arithmetic on subnormals runs through microcode on many CPUs: after
// 8,000 steps on random data, 34,235 of LeNet-5's 48,000 fc1 momenta were
// subnormal, and the update took 7% of the training step's time on a Xeon.
//
// It panics if g, or v when not nil, is shorter than w.
func SGD(w, g, v []float32, lr, mu, wd float32, nesterov, first bool) {
	if len(g) < len(w) || v != nil && len(v) < len(w) {
		panic(fmt.Sprintf("elem: SGD: len(w) = %d, len(g) = %d, len(v) = %d", len(w), len(g), len(v)))
	}
	if len(w) == 0 {
		return
	}
	if !useAsm {
		sgdGo(w, g, v, lr, mu, wd, nesterov, first)
		return
	}
	k := sgdPlain[b2i(wd != 0)]
	if v != nil {
		k = sgdMomentum[b2i(first)][b2i(nesterov)][b2i(wd != 0)]
	}
	k(w, g, v, lr, mu, wd)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sgdGo is SGD in Go. The float32 conversions keep the compiler from fusing
// a multiply and an add, so results do not depend on GOAMD64.
func sgdGo(w, g, v []float32, lr, mu, wd float32, nesterov, first bool) {
	g = g[:len(w)]
	if v == nil {
		for j := range w {
			d := g[j]
			if wd != 0 {
				d += float32(wd * w[j])
			}
			w[j] -= float32(lr * d)
		}
		return
	}
	v = v[:len(w)]
	for j := range w {
		d := g[j]
		if wd != 0 {
			d += float32(wd * w[j])
		}
		if first {
			v[j] = d
		} else {
			v[j] = float32(mu*v[j]) + d
		}
		if math.Float32bits(v[j])&0x7f800000 == 0 {
			v[j] = 0 // a subnormal (or -0)
		}
		if nesterov {
			d += float32(mu * v[j])
		} else {
			d = v[j]
		}
		w[j] -= float32(lr * d)
	}
}

// Tanh sets y[i] to the approximation of tanh(x[i]) that the package
// comment describes. It panics if y and x differ in length.
func Tanh(y, x []float32) {
	if len(y) != len(x) {
		panic(fmt.Sprintf("elem: Tanh: len(y) = %d, len(x) = %d", len(y), len(x)))
	}
	if len(x) == 0 {
		return
	}
	if useAsm {
		tanhAsm(x, y)
		return
	}
	for i, v := range x {
		y[i] = tanhGo(v)
	}
}

// tanhGo is Tanh of one float in Go, operation for operation as the
// assembly computes it.
func tanhGo(x float32) float32 {
	if x > -tanhcoef.Tiny && x < tanhcoef.Tiny {
		return x
	}
	// Not min and max, which may change a NaN's payload.
	if x < -tanhcoef.Clamp {
		x = -tanhcoef.Clamp
	}
	if x > tanhcoef.Clamp {
		x = tanhcoef.Clamp
	}
	P, Q := &tanhcoef.P, &tanhcoef.Q
	x2 := x * x
	p := float32(x2*P[6]) + P[5]
	for i := 4; i >= 0; i-- {
		p = float32(x2*p) + P[i]
	}
	p = x * p
	q := float32(x2*Q[3]) + Q[2]
	for i := 1; i >= 0; i-- {
		q = float32(x2*q) + Q[i]
	}
	return p / q
}

// TanhBackward sets dx[i] = dy[i]*(1 - y[i]*y[i]), the gradient of tanh at
// the output y. It panics if the slices differ in length.
func TanhBackward(dx, y, dy []float32) {
	if len(dx) != len(y) || len(dy) != len(y) {
		panic(fmt.Sprintf("elem: TanhBackward: len(dx) = %d, len(y) = %d, len(dy) = %d", len(dx), len(y), len(dy)))
	}
	if len(y) == 0 {
		return
	}
	if useAsm {
		tanhBackwardAsm(y, dy, dx)
		return
	}
	for i, v := range y {
		dx[i] = dy[i] * (1 - float32(v*v))
	}
}
