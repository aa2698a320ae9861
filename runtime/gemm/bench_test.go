package gemm

import (
	"fmt"
	"testing"
	"time"

	"github.com/cnnc/cnnc/runtime"
)

// benchShapes are square sizes plus the GEMMs of small CNNs: convolutions
// as im2col products (M = output channels, N = batch x output pixels, K =
// input channels x kernel area) and linear layers (M = batch).
var benchShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{name: "square256", m: 256, n: 256, k: 256},
	{name: "square512", m: 512, n: 512, k: 512},
	{name: "square1024", m: 1024, n: 1024, k: 1024},
	{name: "square2048", m: 2048, n: 2048, k: 2048},
	{name: "lenet_conv2_16x6400x150", m: 16, n: 6400, k: 150},
	{name: "vgg_conv_64x16384x288", m: 64, n: 16384, k: 288},
	{name: "linear_64x120x400_NT", transB: true, m: 64, n: 120, k: 400},
	{name: "linear_64x256x4096_NT", transB: true, m: 64, n: 256, k: 4096},
	{name: "linear_bwd_weight_120x400x64_TN", transA: true, m: 120, n: 400, k: 64},
	{name: "mlp_64x500x500_NT", transB: true, m: 64, n: 500, k: 500},
	{name: "mlp_bwd_data_64x500x500_NN", m: 64, n: 500, k: 500},
	{name: "mlp_bwd_weight_500x500x64_TN", transA: true, m: 500, n: 500, k: 64},
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				var pool *runtime.Pool
				if threads > 1 {
					pool = runtime.NewPool(threads)
					defer pool.Close()
				}
				p := &problem{m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB}
				p.init(1)
				run := func() {
					SgemmPar(pool, p.transA, p.transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, p.c, p.ldc, false)
				}
				run()
				best := time.Duration(1 << 62)
				for b.Loop() {
					t0 := time.Now()
					run()
					best = min(best, time.Since(t0))
				}
				flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// The fastest call shows what the code can do when other
				// processes leave the cores alone; the mean above does not.
				b.ReportMetric(flops/best.Seconds()/1e9, "best-GFLOP/s")
			})
		}
	}
}

// BenchmarkKernel measures the micro-kernels alone on L1-resident panels,
// the ceiling the driver can reach: the AVX2 6x16 one and, where the CPU
// has AVX-512, the 6x64 one.
func BenchmarkKernel(b *testing.B) {
	const kc = 256
	a := aligned(nil, kc*mr)
	bp := aligned(nil, kc*nr*zPanelsMax)
	c := aligned(nil, mr*nr*zPanelsMax)
	run := func(name string, cols int, f func()) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f()
			}
			flops := 2 * float64(mr*cols*kc) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	run("6x16", nr, func() { kernel(mr, kc, 1, a, bp, c, nr, true, hint{}) })
	if avx512Supported() {
		cols := nr * zPanelsMax
		run(fmt.Sprintf("6x%d", cols), cols, func() { kernelZ(zPanelsMax, mr, kc, a, bp, c, cols, cols, true, nil, 0, 0) })
	}
}

// BenchmarkKernelColumns measures the AVX2 kernels that store their tile
// transposed and read A's columns where A lies (ttsgemm), over one block
// of k of the MLP's backward-data product, dXᵀ = Wᵀ*dYᵀ: every tile of 6
// of W's 500 columns against the 4 panels of a batch of 64. With lda 500
// each step of k reads 6 floats from the next of W's rows, 2,000 bytes
// on; with lda 6 the same tiles read a strip packed alone, as a packed
// product would, which shows what reading W in place costs the kernels.
func BenchmarkKernelColumns(b *testing.B) {
	if !useAsm || avx512() {
		b.Skip("the transposed kernels run with AVX2 assembly only (CNNC_AVX512=0 on a CPU with AVX-512)")
	}
	const n, batch, kc = 500, 64, 256 // kc: kcBlock's default
	tiles := n / mr
	w := aligned(nil, kc*n)
	for i := range w {
		w[i] = float32(i%13) * 0.01
	}
	bp := aligned(nil, batch*kc)
	c := aligned(nil, batch*n)
	for _, lda := range []int{n, mr} {
		b.Run(fmt.Sprintf("lda=%d", lda), func(b *testing.B) {
			var h ahead // no hints
			for b.Loop() {
				for t := range tiles {
					a := w[t*mr:]
					if lda == mr {
						a = w[t*mr*kc:]
					}
					for q := range batch / nr {
						kernelT(true, mr, kc, a, lda, bp[q*nr*kc:], c[q*nr*n+t*mr:], n, nil, nil, nil, nil, 0, &h)
					}
				}
			}
			flops := 2 * float64(tiles*mr*batch*kc) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemvPar measures batch-1 linear layers' matrix-vector
// products on one and two workers: LeNet-5's first, whose weight stays in
// L2 from one call to the next, and the MLP's ten, each larger than L2,
// multiplied in turn as the network does, so that each comes from L3.
func BenchmarkGemvPar(b *testing.B) {
	for _, s := range []struct {
		name         string
		layers, m, k int
	}{{"lenet_fc1_120x400", 1, 120, 400}, {"mlp_10x500x500", 10, 500, 500}} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				var pool *runtime.Pool
				if threads > 1 {
					pool = runtime.NewPool(threads)
					defer pool.Close()
				}
				size := s.m * s.k
				a := make([]float32, s.layers*size)
				for i := range a {
					a[i] = float32(i%7) * 0.01
				}
				x, y := make([]float32, s.k), make([]float32, s.m)
				for b.Loop() {
					for l := range s.layers {
						GemvPar(pool, 1, s.m, s.k, a[l*size:], s.k, x, s.k, y, s.m)
					}
				}
				flops := 2 * float64(s.layers*size) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
