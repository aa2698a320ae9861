package gemm

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// vecLengths cover the 32-, 8- and 1-float loops of the helpers.
var vecLengths = []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 100, 1000}

func TestAxpy(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, n := range vecLengths {
			x := randSlice(r, n)
			y := randSlice(r, n+3) // y may be longer; the tail stays
			want := append([]float32(nil), y...)
			for i := range n {
				want[i] = float32(float64(y[i]) + 0.75*float64(x[i]))
			}
			Axpy(0.75, x, y)
			for i := range y {
				if math.Abs(float64(y[i]-want[i])) > 1e-6 {
					t.Fatalf("n=%d: y[%d] = %v, want %v", n, i, y[i], want[i])
				}
			}
		}
	})
}

func TestReLU(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range vecLengths {
			x := randSlice(r, n)
			if n > 2 {
				x[0] = float32(math.NaN())
				x[1] = float32(math.Copysign(0, -1))
			}
			want := append([]float32(nil), x...)
			for i, v := range want {
				if v < 0 {
					want[i] = 0
				}
			}
			ReLU(x)
			sameBits(t, n, x, want)
		}
	})
}

func sameBits(t *testing.T, n int, got, want []float32) {
	t.Helper()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("n=%d: [%d] = %v, want %v", n, i, got[i], want[i])
		}
	}
}

func TestBiasReLU(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range vecLengths {
			for v := range 8 {
				m, ldc := 3, n+2
				c := randSlice(r, m*ldc)
				var rowBias, colBias []float32
				if v&1 != 0 {
					rowBias = randSlice(r, m)
				}
				if v&2 != 0 {
					colBias = randSlice(r, n)
				}
				relu := v&4 != 0
				want := append([]float32(nil), c...)
				for i := range m {
					for j := range n {
						x := want[i*ldc+j]
						if rowBias != nil {
							x += rowBias[i]
						}
						if colBias != nil {
							x += colBias[j]
						}
						if relu && x < 0 {
							x = 0
						}
						want[i*ldc+j] = x
					}
				}
				BiasReLU(m, n, c, ldc, rowBias, colBias, relu)
				sameBits(t, n, c, want)
			}
		}
	})
}

// TestRows copies and adds strided rows of every width class (float by
// float, one YMM, YMMs and a rest; whole ZMMs, with and without a masked
// rest) and checks that every float outside the
// rows stays as it was.
func TestRows(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, add := range []bool{false, true} {
			for _, tc := range []struct{ rows, width, dstStride, srcStride int }{
				{0, 5, 5, 5}, {1, 1, 1, 1}, {3, 7, 7, 9}, {4, 8, 8, 8}, {5, 9, 12, 14},
				{10, 10, 10, 14}, {28, 28, 28, 32}, {3, 33, 40, 35}, {2, 100, 100, 101},
				{2, 16, 20, 16}, {3, 32, 32, 40},
			} {
				src := randSlice(r, max(tc.rows-1, 0)*tc.srcStride+tc.width+3)
				dst := randSlice(r, max(tc.rows-1, 0)*tc.dstStride+tc.width+3)
				want := append([]float32(nil), dst...)
				for row := range tc.rows {
					w, s := want[row*tc.dstStride:][:tc.width], src[row*tc.srcStride:][:tc.width]
					for i, v := range s {
						if add {
							w[i] += v
						} else {
							w[i] = v
						}
					}
				}
				if add {
					AddRows(dst, src, tc.rows, tc.width, tc.dstStride, tc.srcStride)
				} else {
					CopyRows(dst, src, tc.rows, tc.width, tc.dstStride, tc.srcStride)
				}
				sameBits(t, tc.width, dst, want)
			}
		}
	})
}

// TestScaleShiftReLU checks that ScaleShiftReLU gives the bits of Axpy into
// a cleared row followed by BiasReLU, on every length class of the
// kernels and on NaN, infinities, -0 and subnormal inputs and shifts.
func TestScaleShiftReLU(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		nan, inf := float32(math.NaN()), float32(math.Inf(1))
		negZero := float32(math.Copysign(0, -1))
		for _, ab := range [][2]float32{{1.5, -0.25}, {-2, 0}, {0.5, negZero}, {negZero, 0}, {1e-30, 1e-40}, {3, nan}, {inf, -1}} {
			for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 100} {
				x := randSlice(r, n+2)
				for i := range x {
					switch i % 9 {
					case 2:
						x[i] = negZero
					case 4:
						x[i] = nan
					case 6:
						x[i] = -inf
					case 8:
						x[i] = 1e-39
					}
				}
				want := make([]float32, n)
				Axpy(ab[0], x[:n], want)
				BiasReLU(1, n, want, max(n, 1), []float32{ab[1]}, nil, true)
				got := randSlice(r, n+1)
				tail := got[n]
				ScaleShiftReLU(got[:n], x, ab[0], ab[1])
				sameBits(t, n, got[:n], want)
				if math.Float32bits(got[n]) != math.Float32bits(tail) {
					t.Fatalf("a, b = %v: wrote past y", ab)
				}
			}
		}
	})
}

// TestMaxPool2x2 pools planes of output widths on both sides of the
// 8-float blocks, with the rows of src wider than the windows, and with
// NaNs, each of which must make its window's output a NaN.
func TestMaxPool2x2(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, tc := range []struct{ oh, ow, w int }{{1, 1, 2}, {5, 2, 4}, {6, 3, 6}, {2, 3, 7}, {3, 4, 8}, {3, 5, 10}, {4, 6, 12}, {2, 7, 15}, {2, 8, 16}, {14, 14, 28}, {5, 9, 19}, {4, 17, 35}, {16, 16, 32}} {
			src := randSlice(r, (2*tc.oh-1)*tc.w+2*tc.ow)
			nan := float32(math.NaN())
			src[1], src[len(src)-1] = nan, nan
			dst := randSlice(r, tc.oh*tc.ow+8)
			tail := dst[tc.oh*tc.ow:]
			tail0 := append([]float32(nil), tail...)
			MaxPool2x2(dst, src, tc.oh, tc.ow, tc.w)
			for i := range tc.oh {
				for j := range tc.ow {
					var best float32
					isNaN := false
					for k, v := range []float32{src[2*i*tc.w+2*j], src[2*i*tc.w+2*j+1], src[(2*i+1)*tc.w+2*j], src[(2*i+1)*tc.w+2*j+1]} {
						isNaN = isNaN || v != v
						if k == 0 || v > best {
							best = v
						}
					}
					got := dst[i*tc.ow+j]
					if isNaN != (got != got) || !isNaN && got != best {
						t.Fatalf("%v: dst[%d,%d] = %v, want %v (NaN %v)", tc, i, j, got, best, isNaN)
					}
				}
			}
			sameBits(t, 8, tail, tail0)
		}
	})
}

// TestMaxPool2x2Backward checks, against a loop over each window, that the
// gradient goes to the first maximum (ties included, by rounding the
// inputs), to the last element of a window with a NaN, that the other
// elements get 0 and that a column past the windows keeps its value; with
// the ReLU, that the elements whose bits are not above 0 get 0 (-0
// included); and that the assembly gives the Go code's bits.
func TestMaxPool2x2Backward(t *testing.T) {
	for _, relu := range []bool{false, true} {
		for _, tc := range []struct{ oh, ow, w int }{{1, 1, 2}, {5, 2, 4}, {6, 3, 6}, {2, 3, 7}, {3, 4, 8}, {3, 5, 10}, {3, 5, 11}, {4, 6, 12}, {2, 7, 15}, {2, 8, 16}, {14, 14, 28}, {5, 9, 19}, {4, 17, 35}, {16, 16, 32}} {
			r := rand.New(rand.NewPCG(11, uint64(tc.w)))
			n := (2*tc.oh-1)*tc.w + 2*tc.ow
			x := randSlice(r, n)
			for i := range x {
				x[i] = float32(math.Round(float64(x[i]) * 2)) // ties
			}
			nan := float32(math.NaN())
			x[1], x[len(x)-1] = nan, nan
			if n > 4 {
				x[2], x[3] = float32(math.Copysign(0, -1)), -0.5 // -0 and a window of no positive element
			}
			dy := randSlice(r, tc.oh*tc.ow)
			var res [][]float32
			kernelModes(t, func(t *testing.T) {
				dx := make([]float32, n+16)
				for i := range dx {
					dx[i] = 7
				}
				if relu {
					MaxPool2x2ReLUBackward(dx, x, dy, tc.oh, tc.ow, tc.w)
				} else {
					MaxPool2x2Backward(dx, x, dy, tc.oh, tc.ow, tc.w)
				}
				for i := range tc.oh {
					for j := range tc.ow {
						at := []int{2*i*tc.w + 2*j, 2*i*tc.w + 2*j + 1, (2*i+1)*tc.w + 2*j, (2*i+1)*tc.w + 2*j + 1}
						win := 3
						m := max(x[at[0]], x[at[1]], x[at[2]], x[at[3]])
						for k := 2; k >= 0; k-- {
							if x[at[k]] == m {
								win = k
							}
						}
						for k, p := range at {
							want := float32(0)
							if k == win && (!relu || int32(math.Float32bits(x[p])) > 0) {
								want = dy[i*tc.ow+j]
							}
							if math.Float32bits(dx[p]) != math.Float32bits(want) {
								t.Fatalf("%v relu %v: window %d,%d element %d: dx = %v, want %v", tc, relu, i, j, k, dx[p], want)
							}
						}
					}
				}
				if tc.w > 2*tc.ow && dx[2*tc.ow] != 7 || slices.ContainsFunc(dx[n:], func(v float32) bool { return v != 7 }) {
					t.Fatalf("%v: wrote past the windows", tc)
				}
				res = append(res, dx)
			})
			for _, got := range res[1:] {
				sameBits(t, 2, got, res[0])
			}
		}
	}
}

// TestTranspose transposes matrices with strides wider than the rows, and
// checks that nothing past the transpose's rows of dst changes.
func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, tc := range []struct{ rows, cols, lds, ldd int }{{1, 1, 1, 1}, {7, 9, 9, 7}, {8, 8, 8, 8}, {16, 150, 150, 16}, {17, 23, 30, 20}, {150, 16, 16, 151}} {
		src := randSlice(r, (tc.rows-1)*tc.lds+tc.cols)
		dst := randSlice(r, (tc.cols-1)*tc.ldd+tc.rows+3)
		dst0 := append([]float32(nil), dst...)
		transpose(dst, tc.ldd, src, tc.lds, tc.rows, tc.cols)
		for k := range dst {
			want := dst0[k]
			if j, i := k/tc.ldd, k%tc.ldd; j < tc.cols && i < tc.rows {
				want = src[i*tc.lds+j]
			}
			if dst[k] != want {
				t.Fatalf("%+v: dst[%d] = %v, want %v", tc, k, dst[k], want)
			}
		}
	}
}
