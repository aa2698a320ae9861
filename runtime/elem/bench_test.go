package elem

import (
	"math/rand/v2"
	"testing"
)

// benchPaths runs f as sub-benchmarks "go" and, where the CPU has the
// kernels, "asm".
func benchPaths(b *testing.B, f func(b *testing.B)) {
	saved := useAsm
	b.Cleanup(func() { useAsm = saved })
	if asmSupported() {
		b.Run("asm", func(b *testing.B) { useAsm = true; f(b) })
	}
	b.Run("go", func(b *testing.B) { useAsm = false; f(b) })
}

// BenchmarkSGD updates one 500x500 weight with momentum (not Nesterov), as
// the SGD of the anchor models does.
func BenchmarkSGD(b *testing.B) {
	const n = 500 * 500
	r := rand.New(rand.NewPCG(1, 2))
	w, g, v := randSlice(r, n, 1), randSlice(r, n, 0.1), randSlice(r, n, 0.1)
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(5 * 4 * n) // read w, g, v; write w, v
		for b.Loop() {
			SGD(w, g, v, 1e-9, 0.9, 0, false, false)
		}
	})
}

// BenchmarkTanh runs tanh and its backward on one batch-64 activation of
// 500 units.
func BenchmarkTanh(b *testing.B) {
	const n = 64 * 500
	r := rand.New(rand.NewPCG(3, 4))
	x, y, dy, dx := randSlice(r, n, 2), make([]float32, n), randSlice(r, n, 1), make([]float32, n)
	Tanh(y, x)
	b.Run("forward", func(b *testing.B) {
		benchPaths(b, func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				Tanh(y, x)
			}
		})
	})
	b.Run("backward", func(b *testing.B) {
		benchPaths(b, func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				TanhBackward(dx, y, dy)
			}
		})
	})
}
