package elem

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cnnc/cnnc/internal/tanhcoef"
)

// lengths cover the 32-, 8- and 1-float loops of the kernels.
var lengths = []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 100, 1000, 1027}

// paths runs f once with the Go kernels and once with the assembly ones,
// when the CPU has them, and returns what each returned: the Go result
// first.
func paths(t *testing.T, f func() []float32) [][]float32 {
	t.Helper()
	saved := useAsm
	t.Cleanup(func() { useAsm = saved })
	useAsm = false
	out := [][]float32{f()}
	if asmSupported() {
		useAsm = true
		out = append(out, f())
	}
	return out
}

// sameBits fails unless got and want hold the same bits.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d floats, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), want %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func randSlice(r *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64() * scale)
	}
	return s
}

// TestSGD checks that the assembly gives the Go code's bits in every
// variant, and that neither writes past len(w).
func TestSGD(t *testing.T) {
	if !asmSupported() {
		t.Log("no assembly kernels in this build or on this CPU; the tests run the Go ones only")
	}
	for _, momentum := range []bool{false, true} {
		for _, first := range []bool{false, true} {
			for _, nesterov := range []bool{false, true} {
				for _, wd := range []float32{0, 1e-3} {
					if !momentum && (first || nesterov) {
						continue
					}
					name := fmt.Sprintf("momentum=%v/first=%v/nesterov=%v/wd=%v", momentum, first, nesterov, wd)
					t.Run(name, func(t *testing.T) {
						r := rand.New(rand.NewPCG(1, 2))
						for _, n := range lengths {
							w0, g, v0 := randSlice(r, n+5, 1), randSlice(r, n+5, 0.1), randSlice(r, n+5, 0.1)
							sgdSpecials(r, g[:n])
							sgdSpecials(r, v0[:n])
							res := paths(t, func() []float32 {
								w, v := slices.Clone(w0), slices.Clone(v0)
								vs := v[:n]
								if !momentum {
									vs = nil
								}
								SGD(w[:n], g, vs, 0.05, 0.9, wd, nesterov, first)
								return append(w, v...)
							})
							if !slices.Equal(res[0][n:n+5], w0[n:]) || !slices.Equal(res[0][2*n+5:], v0[n:]) {
								t.Fatalf("n=%d: the Go update wrote past len(w)", n)
							}
							for _, got := range res[1:] {
								sameBits(t, fmt.Sprintf("n=%d", n), got, res[0])
							}
						}
					})
				}
			}
		}
	}
}

// sgdSpecials puts values that test the momentum's flush among x's: zeros,
// subnormals, the smallest normal, values whose product with the momentum
// factor is subnormal, NaN and infinities.
func sgdSpecials(r *rand.Rand, x []float32) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -3e-45, 0x1p-126, -math.Nextafter32(0x1p-126, 0),
		1.2e-38, -1.25e-38, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	for i := range x {
		if i%4 == 0 {
			x[i] = special[r.IntN(len(special))]
		}
	}
}

// TestSGDFlushesMomentum checks that a momentum below the smallest normal
// float32 becomes zero, and that one above it, NaN and infinities stay.
func TestSGDFlushesMomentum(t *testing.T) {
	tiny := math.Nextafter32(0x1p-126, 0) // the largest subnormal
	for _, c := range []struct {
		name    string
		g, v    float32
		first   bool
		want    float32
		nesterW float32 // w after a Nesterov step from w = 1
	}{
		{"a subnormal momentum without gradient", 0, 3e-45, false, 0, 1},
		{"one that shrinks into the subnormals", 0, 1.2e-38, false, 0, 1},
		{"one that stays normal", 0, 2e-38, false, float32(0.9 * 2e-38), 1},
		{"a subnormal gradient at the first step", tiny, 0, true, 0, 1 - float32(0.5*float64(tiny))},
		{"NaN", 0, float32(math.NaN()), false, float32(math.NaN()), float32(math.NaN())},
		{"infinity", 0, float32(math.Inf(-1)), false, float32(math.Inf(-1)), float32(math.Inf(1))},
	} {
		for _, nesterov := range []bool{false, true} {
			res := paths(t, func() []float32 {
				w, v := []float32{1}, []float32{c.v}
				SGD(w, []float32{c.g}, v, 0.5, 0.9, 0, nesterov, c.first)
				return []float32{w[0], v[0]}
			})
			for _, got := range res {
				if math.Float32bits(got[1]) != math.Float32bits(c.want) && !(c.want != c.want && got[1] != got[1]) {
					t.Errorf("%s, nesterov %v: momentum %g (%#x), want %g", c.name, nesterov, got[1], math.Float32bits(got[1]), c.want)
				}
				if nesterov && got[0] != c.nesterW && !(c.nesterW != c.nesterW && got[0] != got[0]) {
					t.Errorf("%s, nesterov: w = %g, want %g", c.name, got[0], c.nesterW)
				}
			}
		}
	}
}

// tanhInputs returns n inputs that mix the regions of the approximation
// with the special values.
func tanhInputs(r *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), tanhcoef.Tiny, -tanhcoef.Tiny,
		math.Nextafter32(tanhcoef.Tiny, 0), tanhcoef.Clamp, -tanhcoef.Clamp, 1e-30, -1e-40, 20, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	x := randSlice(r, n, 3)
	for i := range x {
		if i%5 == 0 {
			x[i] = special[r.IntN(len(special))]
		}
	}
	return x
}

func TestTanhPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range lengths {
		x := tanhInputs(r, n)
		res := paths(t, func() []float32 {
			y := make([]float32, n+3)
			Tanh(y[:n], x)
			return y
		})
		for _, got := range res[1:] {
			sameBits(t, fmt.Sprintf("n=%d", n), got, res[0])
		}
	}
}

// TestTanhAccuracy compares Tanh with math.Tanh on a sample of the float32
// inputs in [0, 10] (every 61st bit pattern) and checks the values the
// package comment promises.
func TestTanhAccuracy(t *testing.T) {
	const stride = 61
	var x []float32
	for b := uint32(0); b < math.Float32bits(10); b += stride {
		x = append(x, math.Float32frombits(b))
	}
	for _, y := range paths(t, func() []float32 {
		y := make([]float32, len(x))
		Tanh(y, x)
		return y
	}) {
		var maxULP int64
		var maxRel float64
		for i, v := range x {
			want := math.Tanh(float64(v))
			ulp := int64(math.Float32bits(y[i])) - int64(math.Float32bits(float32(want)))
			maxULP = max(maxULP, ulp, -ulp)
			if v != 0 {
				maxRel = max(maxRel, math.Abs(float64(y[i])-want)/want)
			}
		}
		if maxULP > 7 || maxRel > 4.2e-7 {
			t.Errorf("max error %d ulp, relative %.3g; want at most 7 ulp and 4.2e-7", maxULP, maxRel)
		}
	}

	tests := []struct {
		x, want float32
	}{
		{0, 0},
		{float32(math.Copysign(0, -1)), float32(math.Copysign(0, -1))},
		{1e-30, 1e-30},
		{-3e-4, -3e-4},
		{tanhcoef.Clamp, 1},
		{-tanhcoef.Clamp, -1},
		{9, 1},
		{-1e30, -1},
		{float32(math.Inf(1)), 1},
		{float32(math.Inf(-1)), -1},
	}
	for _, tt := range tests {
		for _, got := range paths(t, func() []float32 {
			y := make([]float32, 1)
			Tanh(y, []float32{tt.x})
			return y
		}) {
			sameBits(t, fmt.Sprintf("tanh(%v)", tt.x), got, []float32{tt.want})
		}
	}
	for _, got := range paths(t, func() []float32 {
		y := make([]float32, 1)
		Tanh(y, []float32{float32(math.NaN())})
		return y
	}) {
		if !math.IsNaN(float64(got[0])) {
			t.Errorf("tanh(NaN) = %v, want NaN", got[0])
		}
	}
}

func TestTanhBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range lengths {
		y, dy := randSlice(r, n, 0.5), randSlice(r, n, 1)
		want := make([]float32, n)
		for i := range want {
			want[i] = float32(float64(dy[i]) * (1 - float64(y[i])*float64(y[i])))
		}
		res := paths(t, func() []float32 {
			dx := make([]float32, n)
			TanhBackward(dx, y, dy)
			return dx
		})
		for i := range want {
			if d := math.Abs(float64(res[0][i] - want[i])); d > 1e-6*max(1, math.Abs(float64(want[i]))) {
				t.Fatalf("n=%d: dx[%d] = %v, want %v", n, i, res[0][i], want[i])
			}
		}
		for _, got := range res[1:] {
			sameBits(t, fmt.Sprintf("n=%d", n), got, res[0])
		}
	}
}

func TestLengthPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"SGD short g", func() { SGD(make([]float32, 3), make([]float32, 2), nil, 1, 0, 0, false, false) }},
		{"SGD short v", func() { SGD(make([]float32, 3), make([]float32, 3), make([]float32, 2), 1, 0.9, 0, false, false) }},
		{"Tanh", func() { Tanh(make([]float32, 3), make([]float32, 2)) }},
		{"TanhBackward", func() { TanhBackward(make([]float32, 3), make([]float32, 3), make([]float32, 2)) }},
		{"SumReLU", func() { SumReLU(make([]float32, 3), make([]float32, 2)) }},
		{"ReLUBackward", func() { ReLUBackward(make([]float32, 3), make([]float32, 3), make([]float32, 2)) }},
		{"ColSumF64", func() { ColSumF64(make([]float64, 3), make([]float32, 7), 2, 5) }},
		{"ColSumF64 negative rows", func() { ColSumF64(make([]float64, 3), make([]float32, 7), -1, 5) }},
		{"ColSumReLUF64", func() { ColSumReLUF64(make([]float64, 3), make([]float32, 8), make([]float32, 7), 2, 5) }},
		{"BNReLUSums", func() { BNReLUSums(make([]float32, 3), make([]float32, 3), make([]float32, 2), 0) }},
		{"BNReLUDz", func() {
			BNReLUDz(make([]float32, 3), make([]float32, 3), make([]float32, 2), make([]float32, 3), 0, 1, 1, 0, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}
