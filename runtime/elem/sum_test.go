package elem

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSum checks Sum and SumReLU against a float64 sum and that the
// assembly gives the Go code's bits.
func TestSum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range append(lengths, 784, 4704) {
		x, mask, _ := bnInputs(r, n)
		for _, masked := range []bool{false, true} {
			var want float64
			for i, v := range x {
				if !masked || passed(mask[i]) {
					want += float64(v)
				}
			}
			res := paths(t, func() []float32 {
				got := Sum(x)
				if masked {
					got = SumReLU(x, mask)
				}
				if math.Abs(float64(got)-want) > 1e-5*float64(n+1) {
					t.Errorf("n=%d masked=%v (asm %v): %v, want %v", n, masked, useAsm, got, want)
				}
				return []float32{got}
			})
			for _, got := range res[1:] {
				sameBits(t, fmt.Sprintf("n=%d masked=%v", n, masked), got, res[0])
			}
		}
	}
}

// TestSumSqF64 checks SumSqF64 against sums in order, and that the Go and
// assembly paths give the same bits.
func TestSumSqF64(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range append(lengths, 15, 16, 17, 1024) {
		x, _, _ := bnInputs(r, n)
		var w1, w2 float64
		for _, v := range x {
			w1 += float64(v)
			w2 += float64(v) * float64(v)
		}
		var got [][2]float64
		paths(t, func() []float32 {
			s1, s2 := SumSqF64(x)
			if math.Abs(s1-w1) > 1e-12*float64(n+1)*(1+math.Abs(w1)) || math.Abs(s2-w2) > 1e-12*float64(n+1)*(1+w2) {
				t.Errorf("n=%d (asm %v): %v, %v, want %v, %v", n, useAsm, s1, s2, w1, w2)
			}
			got = append(got, [2]float64{s1, s2})
			return nil
		})
		for _, g := range got[1:] {
			if math.Float64bits(g[0]) != math.Float64bits(got[0][0]) || math.Float64bits(g[1]) != math.Float64bits(got[0][1]) {
				t.Errorf("n=%d: assembly %v, Go %v", n, g, got[0])
			}
		}
	}
}

// TestReLUBackward checks the mask, NaN and -0 included, and that neither
// path writes past len(dx).
func TestReLUBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range lengths {
		dy, y, _ := bnInputs(r, n)
		res := paths(t, func() []float32 {
			dx := make([]float32, n+3)
			ReLUBackward(dx[:n], y, dy)
			for i := range n {
				want := float32(0)
				if passed(y[i]) {
					want = dy[i]
				}
				if math.Float32bits(dx[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d (asm %v): dx[%d] = %v for y %v, dy %v", n, useAsm, i, dx[i], y[i], dy[i])
				}
			}
			return dx
		})
		for _, got := range res[1:] {
			sameBits(t, fmt.Sprintf("n=%d", n), got, res[0])
		}
	}
}

// TestColSumF64 checks both column sums, masked or not, against float64
// additions down each column, that the assembly gives the Go code's bits,
// that neither path writes past len(acc), and that rows = 0 gives zeros.
func TestColSumF64(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, masked := range []bool{false, true} {
		for _, cols := range lengths {
			for _, rows := range []int{0, 1, 3, 64} {
				ld := cols + 5
				x, mask, _ := bnInputs(r, max(rows*ld, 1))
				what := fmt.Sprintf("masked %v, %d rows of %d", masked, rows, cols)
				res := paths(t, func() []float32 {
					acc := make([]float64, cols+1)
					acc[cols] = 7 // past the end: left alone
					for j := range cols {
						acc[j] = 3 // overwritten, not added to
					}
					if masked {
						ColSumReLUF64(acc[:cols], x, mask, rows, ld)
					} else {
						ColSumF64(acc[:cols], x, rows, ld)
					}
					var bits []float32
					for j, got := range acc {
						want := 7.0
						if j < cols {
							want = 0
							for s := range rows {
								if i := s*ld + j; !masked || passed(mask[i]) {
									want += float64(x[i])
								}
							}
						}
						if got != want {
							t.Fatalf("%s (asm %v): acc[%d] = %v, want %v", what, useAsm, j, got, want)
						}
						b := math.Float64bits(got)
						bits = append(bits, math.Float32frombits(uint32(b)), math.Float32frombits(uint32(b>>32)))
					}
					return bits
				})
				for _, got := range res[1:] {
					sameBits(t, what, got, res[0])
				}
			}
		}
	}
}
