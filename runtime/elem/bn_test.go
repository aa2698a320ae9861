package elem

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bnInputs returns dy, the ReLU's output (negative, zero, positive, -0,
// NaN) and z for n elements.
func bnInputs(r *rand.Rand, n int) (dy, out, z []float32) {
	dy, out, z = randSlice(r, n, 1), randSlice(r, n, 1), randSlice(r, n, 2)
	for i := range out {
		switch i % 7 {
		case 1:
			out[i] = 0
		case 3:
			out[i] = float32(math.Copysign(0, -1))
		case 5:
			out[i] = float32(math.NaN())
		}
	}
	return dy, out, z
}

// passed reports whether the ReLU passed a gradient at out: where out's
// bits are above 0, a NaN that the ReLU kept included.
func passed(out float32) bool { return int32(math.Float32bits(out)) > 0 }

// TestBNReLUSums checks the sums against float64 sums in index order, to
// float32's rounding, and that the assembly gives the Go code's bits.
func TestBNReLUSums(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range lengths {
		dy, out, z := bnInputs(r, n)
		const mean = 0.25
		var wantS, wantX, absS, absX float64
		for i := range dy {
			if passed(out[i]) {
				g, p := float64(dy[i]), float64(dy[i])*(float64(z[i])-mean)
				wantS, wantX = wantS+g, wantX+p
				absS, absX = absS+math.Abs(g), absX+math.Abs(p)
			}
		}
		// Each lane adds n/32 elements, then come the folds and the tail.
		ulps := 6e-8 * float64(n/32+40)
		res := paths(t, func() []float32 {
			s, x := BNReLUSums(dy, out, z, mean)
			if math.Abs(float64(s)-wantS) > ulps*absS || math.Abs(float64(x)-wantX) > ulps*absX {
				t.Errorf("n=%d (asm %v): sums %v, %v, want %v, %v", n, useAsm, s, x, wantS, wantX)
			}
			return []float32{s, x}
		})
		for _, got := range res[1:] {
			sameBits(t, fmt.Sprintf("n=%d", n), got, res[0])
		}
	}
}

// TestBNReLUDz checks dz against its formula in float64 and that the
// assembly gives the Go code's bits, in place over dy too.
func TestBNReLUDz(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const mean, istd, a, b, c = -0.5, 0.8, 1.25, -0.0375, 0.0625
	for _, n := range lengths {
		dy, out, z := bnInputs(r, n)
		for _, inPlace := range []bool{false, true} {
			res := paths(t, func() []float32 {
				d := append([]float32(nil), dy...)
				dz := make([]float32, n+3)
				if inPlace {
					dz = d
				}
				BNReLUDz(dz[:n], d, out, z, mean, istd, a, b, c)
				for i := range n {
					g := 0.0
					if passed(out[i]) {
						g = float64(dy[i])
					}
					ag, bx := a*g, b*(float64(z[i])-mean)*istd
					want := ag - bx - c
					// float32 rounds each of the five operations once.
					if math.Abs(float64(dz[i])-want) > 3e-7*(math.Abs(ag)+math.Abs(bx)+math.Abs(c)) {
						t.Fatalf("n=%d (asm %v): dz[%d] = %v, want %v", n, useAsm, i, dz[i], want)
					}
				}
				return dz
			})
			for _, got := range res[1:] {
				sameBits(t, fmt.Sprintf("n=%d in place %v", n, inPlace), got, res[0])
			}
		}
	}
}
