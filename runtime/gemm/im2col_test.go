package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cnnc/cnnc/runtime"
)

// build returns the im2col matrix im describes, Rows() x Cols().
func (im *Im2col) build() []float32 {
	out := make([]float32, 0, im.Rows()*im.Cols())
	for c := range im.C {
		for p := range im.KH {
			for q := range im.KW {
				for oy := range im.OH {
					for ox := range im.OW {
						out = append(out, im.X[c*im.H*im.W+(oy*im.SH+p*im.DH)*im.W+ox*im.SW+q*im.DW])
					}
				}
			}
		}
	}
	return out
}

// im2colGeoms are convolutions whose panels lie side by side in the
// sample (widths that are multiples of 16 at stride 1), cross output rows,
// stride or dilate.
var im2colGeoms = []Im2col{
	{C: 3, H: 34, W: 34, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, OH: 32, OW: 32},  // VGG, padded
	{C: 32, H: 18, W: 18, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, OH: 16, OW: 16}, // VGG, deeper
	{C: 1, H: 32, W: 32, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, OH: 28, OW: 28},  // LeNet conv1
	{C: 6, H: 14, W: 14, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, OH: 10, OW: 10},  // LeNet conv2
	{C: 5, H: 37, W: 37, KH: 7, KW: 7, SH: 2, SW: 2, DH: 1, DW: 1, OH: 16, OW: 16},  // stride 2, 7x7
	{C: 3, H: 21, W: 40, KH: 3, KW: 3, SH: 1, SW: 1, DH: 2, DW: 2, OH: 17, OW: 36},  // dilated
	{C: 7, H: 16, W: 33, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, OH: 16, OW: 33},  // 1x1, odd width
	{C: 2, H: 20, W: 20, KH: 2, KW: 3, SH: 3, SW: 1, DH: 1, DW: 1, OH: 7, OW: 18},   // row stride only
}

// TestSgemmIm2col checks that SgemmIm2col and SgemmIm2colPix give the
// bits of SgemmEpi on the matrix built, for each of im2colGeoms, with and
// without a pool, accumulating or not, with and without a bias, leaving
// C's columns past the product alone.
func TestSgemmIm2col(t *testing.T) {
	pool := runtime.NewPool(3)
	defer pool.Close()
	for _, f := range []struct {
		name string
		fn   func(pool *runtime.Pool, m int, a []float32, lda int, b Im2col, c []float32, ldc int, accumulate bool, ep Epilogue)
	}{{"SgemmIm2col", SgemmIm2col}, {"SgemmIm2colPix", SgemmIm2colPix}} {
		t.Run(f.name, func(t *testing.T) {
			kernelModes(t, func(t *testing.T) {
				r := rand.New(rand.NewPCG(3, 4))
				for i, im := range im2colGeoms {
					im.X = randSlice(r, im.C*im.H*im.W+5)
					for _, m := range []int{1, 6, 16, 33} {
						t.Run(fmt.Sprintf("%d/m=%d", i, m), func(t *testing.T) {
							k, n := im.Rows(), im.Cols()
							a := randSlice(r, m*(k+1))
							c0 := randSlice(r, m*(n+3))
							ep := Epilogue{ReLU: m%2 == 0}
							if m != 16 {
								ep.RowBias = randSlice(r, m)
							}
							acc := m == 6 || m == 33
							want := append([]float32(nil), c0...)
							SgemmEpi(nil, false, false, m, n, k, a, k+1, im.build(), n, want, n+3, acc, ep)
							for _, p := range []*runtime.Pool{nil, pool} {
								got := append([]float32(nil), c0...)
								f.fn(p, m, a, k+1, im, got, n+3, acc, ep)
								for x := range got {
									if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
										t.Fatalf("pool %v: C[%d, %d] = %v, want %v", p != nil, x/(n+3), x%(n+3), got[x], want[x])
									}
								}
							}
						})
					}
				}
			})
		})
	}
}

// TestSgemmIm2colT checks that SgemmIm2colT gives the bits of SgemmPar on
// the transpose of the matrix built, for each of im2colGeoms.
func TestSgemmIm2colT(t *testing.T) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for i, im := range im2colGeoms {
			im.X = randSlice(r, im.C*im.H*im.W+5)
			for _, m := range []int{1, 6, 16, 33} {
				t.Run(fmt.Sprintf("%d/m=%d", i, m), func(t *testing.T) {
					n, k := im.Rows(), im.Cols()
					a := randSlice(r, m*k)
					c0 := randSlice(r, m*(n+3))
					acc := m == 6
					want := append([]float32(nil), c0...)
					SgemmPar(nil, false, true, m, n, k, a, k, im.build(), k, want, n+3, acc)
					for _, p := range []*runtime.Pool{nil, pool} {
						got := append([]float32(nil), c0...)
						SgemmIm2colT(p, m, a, k, im, got, n+3, acc)
						for x := range got {
							if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
								t.Fatalf("pool %v: C[%d] = %v, want %v", p != nil, x, got[x], want[x])
							}
						}
					}
				})
			}
		}
	})
}

// TestSgemmIm2colBT checks that SgemmIm2colBT gives the bits of
// SgemmIm2colT, transposed, for each of im2colGeoms.
func TestSgemmIm2colBT(t *testing.T) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for i, im := range im2colGeoms {
			im.X = randSlice(r, im.C*im.H*im.W)
			for _, n := range []int{1, 6, 16, 33, 64} {
				t.Run(fmt.Sprintf("%d/n=%d", i, n), func(t *testing.T) {
					m, k := im.Rows(), im.Cols()
					b := randSlice(r, n*(k+2))
					c0 := randSlice(r, m*(n+3))
					acc := n%2 == 0
					want := make([]float32, n*m)
					for j := range n {
						for i := range m {
							want[j*m+i] = c0[i*(n+3)+j]
						}
					}
					SgemmIm2colT(nil, n, b, k+2, im, want, m, acc)
					for _, p := range []*runtime.Pool{nil, pool} {
						got := append([]float32(nil), c0...)
						SgemmIm2colBT(p, n, im, b, k+2, got, n+3, acc)
						for i := range m {
							for j := range n {
								if g, w := got[i*(n+3)+j], want[j*m+i]; math.Float32bits(g) != math.Float32bits(w) {
									t.Fatalf("pool %v: C[%d, %d] = %v, want %v", p != nil, i, j, g, w)
								}
							}
							for j := n; j < n+3 && i < m-1; j++ {
								if got[i*(n+3)+j] != c0[i*(n+3)+j] {
									t.Fatalf("pool %v: C[%d, %d] past the product written", p != nil, i, j)
								}
							}
						}
					}
				})
			}
		}
	})
}

func TestSgemmIm2colPanics(t *testing.T) {
	ok := Im2col{X: make([]float32, 3*10*10), C: 3, H: 10, W: 10, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, OH: 8, OW: 8}
	tests := []struct {
		name string
		edit func(im *Im2col)
	}{
		{"zero stride", func(im *Im2col) { im.SW = 0 }},
		{"output too tall", func(im *Im2col) { im.OH = 9 }},
		{"output too wide for the dilation", func(im *Im2col) { im.DW = 2 }},
		{"short sample", func(im *Im2col) { im.X = im.X[:299] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := ok
			tt.edit(&im)
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			SgemmIm2col(nil, 4, make([]float32, 4*27), 27, im, make([]float32, 4*64), 64, false, Epilogue{})
		})
	}
}

func TestSgemmIm2colNoAllocs(t *testing.T) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	im := Im2col{X: make([]float32, 8*18*18), C: 8, H: 18, W: 18, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, OH: 16, OW: 16}
	a, c := make([]float32, 16*72), make([]float32, 16*256)
	f := func() { SgemmIm2col(pool, 16, a, 72, im, c, 256, false, Epilogue{ReLU: true}) }
	f()
	if n := testing.AllocsPerRun(20, f); n != 0 {
		t.Errorf("SgemmIm2col allocates %v times per call", n)
	}
	pix := func() { SgemmIm2colPix(pool, 16, a, 72, im, c, 256, false, Epilogue{ReLU: true}) }
	pix()
	if n := testing.AllocsPerRun(20, pix); n != 0 {
		t.Errorf("SgemmIm2colPix allocates %v times per call", n)
	}
}

// TestSgemmIm2colTDot checks SgemmIm2colTDot against SgemmIm2colT for each
// of im2colGeoms: the sums run in another order, so each element may
// differ by a few roundings of the sum of its products' magnitudes.
func TestSgemmIm2colTDot(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for i, im := range im2colGeoms {
			im.X = randSlice(r, im.C*im.H*im.W)
			for _, m := range []int{1, 6, 7, 16} {
				t.Run(fmt.Sprintf("%d/m=%d", i, m), func(t *testing.T) {
					n, k := im.Rows(), im.Cols()
					a := randSlice(r, m*(k+1))
					c0 := randSlice(r, m*(n+3))
					acc := m%2 == 0
					want := append([]float32(nil), c0...)
					SgemmIm2colT(nil, m, a, k+1, im, want, n+3, acc)
					abs := make([]float32, m*(n+3))
					for x := range abs {
						abs[x] = float32(math.Abs(float64(c0[x])))
					}
					absA, absIm := make([]float32, len(a)), Im2col(im)
					for x, v := range a {
						absA[x] = float32(math.Abs(float64(v)))
					}
					absIm.X = make([]float32, len(im.X))
					for x, v := range im.X {
						absIm.X[x] = float32(math.Abs(float64(v)))
					}
					SgemmIm2colT(nil, m, absA, k+1, absIm, abs, n+3, acc)
					got := append([]float32(nil), c0...)
					SgemmIm2colTDot(m, a, k+1, im, got, n+3, acc)
					for x := range got {
						if d := math.Abs(float64(got[x] - want[x])); d > 1e-5*float64(abs[x]) {
							t.Fatalf("C[%d] = %v, want %v (off by %.2g of %v)", x, got[x], want[x], d, abs[x])
						}
					}
				})
			}
		}
	})
}
