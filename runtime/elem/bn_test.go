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

// TestBNReLUSums checks the sums against a float64 sum in index order and
// that the assembly gives the Go code's bits.
func TestBNReLUSums(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range lengths {
		dy, out, z := bnInputs(r, n)
		const mean, istd = 0.25, 1.7
		var wantS, wantX float64
		for i := range dy {
			if passed(out[i]) {
				wantS += float64(dy[i])
				wantX += float64(dy[i]) * (float64(z[i]) - mean) * istd
			}
		}
		res := paths(t, func() []float32 {
			s, x := BNReLUSums(dy, out, z, mean, istd)
			if math.Abs(s-wantS) > 1e-12*float64(n+1) || math.Abs(x-wantX) > 1e-11*float64(n+1) {
				t.Errorf("n=%d (asm %v): sums %v, %v, want %v, %v", n, useAsm, s, x, wantS, wantX)
			}
			// Compare bits through float32 halves of each float64.
			b := [2]uint64{math.Float64bits(s), math.Float64bits(x)}
			return []float32{math.Float32frombits(uint32(b[0])), math.Float32frombits(uint32(b[0] >> 32)),
				math.Float32frombits(uint32(b[1])), math.Float32frombits(uint32(b[1] >> 32))}
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
