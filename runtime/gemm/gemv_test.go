package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestGemv(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, m := range []int{1, 2, 3, 4, 5, 7, 8, 10, 120} {
			for _, k := range []int{0, 1, 7, 8, 9, 15, 16, 17, 33, 400} {
				lda := k + 3 // rows padded: Gemv must not read past k
				a := randSlice(r, m*lda)
				x := randSlice(r, k)
				y := randSlice(r, m+2)
				tail := append([]float32(nil), y[m:]...)
				Gemv(m, k, a, lda, x, y)
				for i := range m {
					var want, mag float64
					for p := range k {
						want += float64(a[i*lda+p]) * float64(x[p])
						mag += math.Abs(float64(a[i*lda+p]) * float64(x[p]))
					}
					if d := math.Abs(float64(y[i]) - want); d > 1e-5*(mag+1) {
						t.Fatalf("m=%d k=%d: y[%d] = %v, want %v", m, k, i, y[i], want)
					}
				}
				for i, v := range tail {
					if y[m+i] != v {
						t.Fatalf("m=%d k=%d: Gemv wrote y[%d] past m", m, k, m+i)
					}
				}
			}
		}
	})
}

func TestGemvNoAllocs(t *testing.T) {
	a, x, y := make([]float32, 120*400), make([]float32, 400), make([]float32, 120)
	if n := testing.AllocsPerRun(10, func() { Gemv(120, 400, a, 400, x, y) }); n != 0 {
		t.Errorf("Gemv allocates %v times", n)
	}
}

// TestGemvPar checks that GemvPar gives each vector Gemv's bits on any
// number of workers, with rows past the last block of four, k = 0, and
// rows of x and y longer than the product, whose padding in y it must
// leave alone.
func TestGemvPar(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		pools := testPools(t, 0, 1, 2, 3, 4)
		for _, sh := range []struct{ n, m, k int }{
			{1, 500, 784}, {3, 500, 500}, {2, 10, 33}, {1, 7, 9}, {2, 9, 16}, {1, 8, 1}, {3, 131, 17}, {2, 4, 0},
		} {
			lda, ldx, ldy := sh.k+3, sh.k+5, sh.m+2
			a := randSlice(r, sh.m*lda)
			x := randSlice(r, sh.n*ldx)
			want := randSlice(r, sh.n*ldy)
			for s := range sh.n {
				Gemv(sh.m, sh.k, a, lda, x[s*ldx:], want[s*ldy:])
			}
			for i, pool := range pools {
				y := append([]float32(nil), want...)
				for s := range sh.n {
					clear(y[s*ldy : s*ldy+sh.m]) // the padding keeps want's values
				}
				GemvPar(pool, sh.n, sh.m, sh.k, a, lda, x, ldx, y, ldy)
				for j := range y {
					if math.Float32bits(y[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%+v, pool %d: y[%d] = %v, want %v", sh, i, j, y[j], want[j])
					}
				}
			}
		}
	})
}

func TestGemvParNoAllocs(t *testing.T) {
	pool := testPools(t, 2)[0]
	a, x, y := make([]float32, 500*500), make([]float32, 500), make([]float32, 500)
	GemvPar(pool, 1, 500, 500, a, 500, x, 500, y, 500)
	if n := testing.AllocsPerRun(10, func() { GemvPar(pool, 1, 500, 500, a, 500, x, 500, y, 500) }); n != 0 {
		t.Errorf("GemvPar allocates %v times", n)
	}
}
