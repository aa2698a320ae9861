package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cnnc/cnnc/runtime"
)

// TestSgemmPacked checks that a product with A packed once by PackA gives
// the bits of SgemmEpi on A, for A stored either way, with the default
// blocks and with blocks small enough that A spans several blocks of k
// and of rows, with and without a pool.
func TestSgemmPacked(t *testing.T) {
	pool := testPools(t, 2)[0]
	saved := keepBlocks(t)
	for _, blocks := range [][2]int{{saved[0], saved[1]}, {8, 12}} {
		kcBlock, mcBlock = blocks[0], blocks[1]
		kernelModes(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			for _, s := range [][3]int{{1, 1, 1}, {16, 100, 150}, {150, 100, 16}, {13, 33, 40}, {40, 70, 300}, {7, 17, 9}} {
				m, n, k := s[0], s[1], s[2]
				for v := range 4 {
					transA, acc := v&1 != 0, v&2 != 0
					t.Run(fmt.Sprintf("kc%d/%dx%dx%d/transA=%v/acc=%v", kcBlock, m, n, k, transA, acc), func(t *testing.T) {
						lda := k + 1
						if transA {
							lda = m + 2
						}
						a := randSlice(r, lda*max(m, k))
						b := randSlice(r, k*n)
						c0 := randSlice(r, m*n)
						ep := Epilogue{RowBias: randSlice(r, m), ReLU: v == 1}
						want := append([]float32(nil), c0...)
						SgemmEpi(nil, transA, false, m, n, k, a, lda, b, n, want, n, acc, ep)
						ap := make([]float32, PackedASize(m, k))
						PackA(ap, transA, m, k, a, lda)
						for _, p := range []*runtime.Pool{nil, pool} {
							got := append([]float32(nil), c0...)
							SgemmPacked(p, m, n, k, ap, b, n, got, n, acc, ep)
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
}

// TestSgemmIm2colPacked checks that SgemmIm2colPacked gives the bits of
// SgemmIm2col for each of im2colGeoms.
func TestSgemmIm2colPacked(t *testing.T) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for i, im := range im2colGeoms {
			im.X = randSlice(r, im.C*im.H*im.W)
			for _, m := range []int{1, 16, 33} {
				t.Run(fmt.Sprintf("%d/m=%d", i, m), func(t *testing.T) {
					k, n := im.Rows(), im.Cols()
					a := randSlice(r, m*k)
					ep := Epilogue{RowBias: randSlice(r, m), ReLU: m == 16}
					want := make([]float32, m*n)
					SgemmIm2col(nil, m, a, k, im, want, n, false, ep)
					ap := make([]float32, PackedASize(m, k))
					PackA(ap, false, m, k, a, k)
					for _, p := range []*runtime.Pool{nil, pool} {
						got := make([]float32, m*n)
						SgemmIm2colPacked(p, m, ap, im, got, n, false, ep)
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

func TestPackedPanics(t *testing.T) {
	a := make([]float32, 6*10)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"PackA short dst", func() { PackA(make([]float32, PackedASize(6, 10)-1), false, 6, 10, a, 10) }},
		{"PackA short A", func() { PackA(make([]float32, PackedASize(7, 10)), false, 7, 10, a, 10) }},
		{"SgemmPacked short packed A", func() {
			SgemmPacked(nil, 7, 4, 10, make([]float32, PackedASize(6, 10)), make([]float32, 40), 4, make([]float32, 28), 4, false, Epilogue{})
		}},
		{"SgemmIm2colPacked short packed A", func() {
			im := im2colGeoms[3]
			im.X = make([]float32, im.C*im.H*im.W)
			SgemmIm2colPacked(nil, 16, make([]float32, 10), im, make([]float32, 16*im.Cols()), im.Cols(), false, Epilogue{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.f()
		})
	}
}
