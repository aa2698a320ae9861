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
