package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/cnnc/cnnc/runtime"
	"github.com/cnnc/cnnc/runtime/elem"
)

// kernelModes runs f once with each micro-kernel this machine can run: the
// AVX-512 and the AVX2 assembly (when the CPU and build allow them) and the
// pure Go one.
func kernelModes(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	savedAsm, savedZ := useAsm, zPanels
	t.Cleanup(func() { useAsm, zPanels = savedAsm, savedZ })
	if avx512Supported() {
		t.Run("avx512", func(t *testing.T) { useAsm, zPanels = true, zPanelsMax; f(t) })
	} else {
		t.Log("AVX-512 kernels not available in this build or on this CPU")
	}
	if asmSupported() {
		t.Run("avx2", func(t *testing.T) { useAsm, zPanels = true, 0; f(t) })
	} else {
		t.Log("assembly kernels not available in this build or on this CPU")
	}
	t.Run("go", func(t *testing.T) { useAsm, zPanels = false, 0; f(t) })
}

// testPools returns pools of the given numbers of workers, closed when t
// ends; 0 gives nil, the calling goroutine alone.
func testPools(t testing.TB, workers ...int) []*runtime.Pool {
	pools := make([]*runtime.Pool, len(workers))
	for i, w := range workers {
		if w > 0 {
			p := runtime.NewPool(w)
			t.Cleanup(p.Close)
			pools[i] = p
		}
	}
	return pools
}

// keepBlocks returns the cache blocking, kcBlock, mcBlock and ncBlock,
// and restores it when t ends, for a test that shrinks it.
func keepBlocks(t testing.TB) [3]int {
	saved := [3]int{kcBlock, mcBlock, ncBlock}
	t.Cleanup(func() { kcBlock, mcBlock, ncBlock = saved[0], saved[1], saved[2] })
	return saved
}

// problem is one GEMM with its operands laid out with the given padding
// beyond each row.
type problem struct {
	transA, transB bool
	m, n, k        int
	padA, padB     int
	padC           int
	accumulate     bool

	a, b, c []float32
	lda     int
	ldb     int
	ldc     int
}

func randSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.Float64()*2 - 1)
	}
	return x
}

func (p *problem) init(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	ar, ac := p.m, p.k
	if p.transA {
		ar, ac = p.k, p.m
	}
	br, bc := p.k, p.n
	if p.transB {
		br, bc = p.n, p.k
	}
	p.lda, p.ldb, p.ldc = ac+p.padA, bc+p.padB, p.n+p.padC
	p.a = randSlice(r, max(ar*p.lda-p.padA, 0))
	p.b = randSlice(r, max(br*p.ldb-p.padB, 0))
	p.c = randSlice(r, max(p.m*p.ldc-p.padC, 0))
}

func (p *problem) at(x []float32, ld int, trans bool, i, j int) float64 {
	if trans {
		return float64(x[j*ld+i])
	}
	return float64(x[i*ld+j])
}

// check compares got with a float64 triple loop over p's inputs (c0 is C
// before the call) and checks that the padding of C was not written.
func (p *problem) check(t *testing.T, c0, got []float32) {
	t.Helper()
	bad := 0
	for i := range p.m {
		for j := range p.n {
			var sum, abs float64
			for q := range p.k {
				v := p.at(p.a, p.lda, p.transA, i, q) * p.at(p.b, p.ldb, p.transB, q, j)
				sum += v
				abs += math.Abs(v)
			}
			if p.accumulate {
				sum += float64(c0[i*p.ldc+j])
				abs += math.Abs(float64(c0[i*p.ldc+j]))
			}
			g := float64(got[i*p.ldc+j])
			tol := 2e-7*float64(p.k+2)*abs + 1e-30
			if math.Abs(g-sum) > tol || math.IsNaN(g) {
				if bad < 5 {
					t.Errorf("C[%d][%d] = %v, want %v (tolerance %.3g)", i, j, g, sum, tol)
				}
				bad++
			}
		}
		for j := p.n; j < p.ldc && i*p.ldc+j < len(got); j++ {
			if got[i*p.ldc+j] != c0[i*p.ldc+j] {
				t.Fatalf("padding C[%d][%d] changed from %v to %v", i, j, c0[i*p.ldc+j], got[i*p.ldc+j])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d elements wrong", bad, p.m*p.n)
	}
}

func (p *problem) String() string {
	s := fmt.Sprintf("%dx%dx%d", p.m, p.n, p.k)
	if p.transA {
		s += "_TA"
	}
	if p.transB {
		s += "_TB"
	}
	if p.accumulate {
		s += "_acc"
	}
	if p.padA+p.padB+p.padC > 0 {
		s += fmt.Sprintf("_pad%d.%d.%d", p.padA, p.padB, p.padC)
	}
	return s
}

// run calls SgemmPar on a copy of C and returns it.
func (p *problem) run(pool *runtime.Pool) []float32 {
	c := append([]float32(nil), p.c...)
	SgemmPar(pool, p.transA, p.transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, c, p.ldc, p.accumulate)
	return c
}

func shapes(testing.TB) [][3]int {
	var s [][3]int
	small := []int{1, 5, 6, 7, 15, 16, 17}
	for _, m := range small {
		for _, n := range small {
			for _, k := range []int{1, 7, 25} {
				s = append(s, [3]int{m, n, k})
			}
		}
	}
	return append(s,
		[3]int{63, 63, 63}, [3]int{100, 100, 100}, [3]int{16, 100, 150},
		[3]int{64, 120, 400}, [3]int{255, 257, 1}, [3]int{257, 255, 25},
		[3]int{145, 33, 257}, [3]int{150, 4100, 3}, [3]int{300, 257, 513},
		[3]int{7, 1000, 300},
		// The transposed path's edges: 2-row tiles (n%6 == 2), several
		// blocks of k, the longest k it takes and one past it.
		[3]int{20, 8, 300}, [3]int{33, 26, 1024}, [3]int{9, 14, 1025},
	)
}

func TestSgemm(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		seed := uint64(1)
		for _, s := range shapes(t) {
			for v := range 8 {
				p := &problem{m: s[0], n: s[1], k: s[2],
					transA: v&1 != 0, transB: v&2 != 0, accumulate: v&4 != 0}
				if v == 5 || v == 2 {
					p.padA, p.padB, p.padC = 3, 1, 5
				}
				seed++
				p.init(seed)
				t.Run(p.String(), func(t *testing.T) {
					p.check(t, p.c, p.run(nil))
				})
			}
		}
	})
}

// TestSgemmWrappers checks that Sgemm and SgemmTrans pass their arguments
// through.
func TestSgemmWrappers(t *testing.T) {
	p := &problem{m: 13, n: 35, k: 9, padA: 2, padB: 1, padC: 3, accumulate: true}
	p.init(99)
	c := append([]float32(nil), p.c...)
	Sgemm(p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, c, p.ldc, true)
	p.check(t, p.c, c)

	p = &problem{m: 13, n: 35, k: 9, transA: true, transB: true}
	p.init(98)
	c = append([]float32(nil), p.c...)
	SgemmTrans(true, true, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, c, p.ldc, false)
	p.check(t, p.c, c)
}

// TestSgemmK0 checks that an empty sum clears C, or leaves it when
// accumulating.
func TestSgemmK0(t *testing.T) {
	c := []float32{1, 2, 3, 4, 5, 6}
	Sgemm(2, 2, 0, nil, 1, nil, 2, c, 3, true)
	if c[0] != 1 || c[4] != 5 {
		t.Fatalf("accumulate with k=0 changed C: %v", c)
	}
	Sgemm(2, 2, 0, nil, 1, nil, 2, c, 3, false)
	if want := []float32{0, 0, 3, 0, 0, 6}; fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("C = %v, want %v", c, want)
	}
}

func TestSgemmPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"short a":   func() { Sgemm(2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, make([]float32, 4), 2, false) },
		"small lda": func() { Sgemm(2, 2, 2, make([]float32, 4), 1, make([]float32, 4), 2, make([]float32, 4), 2, false) },
		"short c":   func() { Sgemm(2, 2, 2, make([]float32, 4), 2, make([]float32, 4), 2, make([]float32, 3), 2, false) },
		"negative":  func() { Sgemm(-1, 2, 2, nil, 2, nil, 2, nil, 2, false) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestSgemmParDeterministic checks that results are correct and bit for bit
// the same for every pool size, in both split directions.
func TestSgemmParDeterministic(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		pools := testPools(t, 1, 2, 3, 4)
		for i, s := range [][3]int{{300, 257, 600}, {16, 1000, 150}, {64, 120, 400}, {5, 17, 3}, {1030, 40, 70}} {
			p := &problem{m: s[0], n: s[1], k: s[2], transA: i%2 == 1, transB: i%3 == 1, accumulate: i == 2, padC: 1}
			p.init(uint64(100 + i))
			t.Run(p.String(), func(t *testing.T) {
				want := p.run(nil)
				p.check(t, p.c, want)
				for _, pool := range pools {
					got := p.run(pool)
					for x := range got {
						if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
							t.Fatalf("%d workers: C[%d] = %v, serial gives %v", pool.Workers(), x, got[x], want[x])
						}
					}
				}
			})
		}
	})
}

// TestSplitK checks the products whose workers share the blocks of k
// (splitK with AVX2, splitKZ with AVX-512): a linear layer's
// backward-data, two blocks and a short last one, four blocks, a last
// tile of two rows and a partial panel of A's rows. Each must give the
// bits of one worker on every pool, its padding untouched.
func TestSplitK(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		pools := testPools(t, 2, 3, 4)
		for i, s := range [][3]int{{64, 500, 500}, {48, 300, 1000}, {20, 8, 300}, {9, 62, 700}} {
			p := &problem{m: s[0], n: s[1], k: s[2], padB: i, padC: 3}
			p.init(uint64(300 + i))
			t.Run(p.String(), func(t *testing.T) {
				g := &driver{call: call{m: p.m, n: p.n, k: p.k, ldb: p.ldb}}
				split := g.transposed() && g.splitK()
				if avx512() {
					split = g.m <= mcBlock && g.splitKZ()
				}
				if useAsm && !split {
					t.Fatalf("the product does not split its blocks of k")
				}
				want := p.run(nil)
				p.check(t, p.c, want)
				for _, pool := range pools {
					got := p.run(pool)
					p.check(t, p.c, got)
					sameBits(t, len(got), got, want)
				}
			})
		}
	})
}

// TestByColumns checks the choice between row and column mode: columns
// for a short A or where they balance the tiles better, but not where the
// AVX-512 kernels would read more than two blocks of A's rows in place for
// every column chunk. It only decides, so it runs on any CPU.
func TestByColumns(t *testing.T) {
	savedAsm, savedZ := useAsm, zPanels
	t.Cleanup(func() { useAsm, zPanels = savedAsm, savedZ })
	for _, tc := range []struct {
		name        string
		zPanels     int
		m, n, split int
		want        bool
	}{
		{"short A", zPanelsMax, 64, 500, 2, true},
		{"short A, AVX2", 0, 64, 500, 2, true},
		{"odd row panels, A in L2", zPanelsMax, 150, 2000, 2, true},
		{"odd row panels, two blocks of A", zPanelsMax, 2*mcBlock - mr, 2000, 2, true},
		{"odd row panels, A past two blocks", zPanelsMax, 330, 3000, 2, false},
		{"square 1024", zPanelsMax, 1024, 1024, 2, false},
		{"square 1024, AVX2", 0, 1024, 1024, 2, true},
		{"even row panels", 0, 1020, 1024, 2, false},
		{"one worker", 0, 1024, 1024, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useAsm, zPanels = true, tc.zPanels
			g := &driver{call: call{m: tc.m, n: tc.n, k: 256}}
			if got := g.byColumns(tc.split); got != tc.want {
				t.Errorf("byColumns(%d) for %dx%d = %v, want %v", tc.split, tc.m, tc.n, got, tc.want)
			}
		})
	}
}

// TestAVX512MatchesAVX2 checks that the AVX-512 kernels give the AVX2
// kernels' bits, with and without an epilogue: each element is the same
// chain of FMAs in k order, however wide the tile, so a model computes the
// same on either CPU.
func TestAVX512MatchesAVX2(t *testing.T) {
	if !avx512Supported() {
		t.Skip("AVX-512 kernels not available in this build or on this CPU")
	}
	savedAsm, savedZ := useAsm, zPanels
	t.Cleanup(func() { useAsm, zPanels = savedAsm, savedZ })
	useAsm = true
	for i, s := range [][3]int{{300, 257, 600}, {16, 1000, 150}, {64, 120, 400}, {6, 48, 9}, {13, 80, 700}} {
		p := &problem{m: s[0], n: s[1], k: s[2], transA: i%2 == 1, transB: i%3 == 1, accumulate: i == 2, padC: 3}
		p.init(uint64(200 + i))
		ep := Epilogue{RowBias: randSlice(rand.New(rand.NewPCG(1, 2)), p.m), ReLU: i%2 == 0}
		run := func() []float32 {
			c := append([]float32(nil), p.c...)
			SgemmEpi(nil, p.transA, p.transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, c, p.ldc, p.accumulate, ep)
			return c
		}
		t.Run(p.String(), func(t *testing.T) {
			zPanels = 0
			want := run()
			for panels := 1; panels <= zPanelsMax; panels++ {
				zPanels = panels
				got := run()
				for x := range got {
					if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
						t.Fatalf("%d panels: C[%d] = %v, AVX2 gives %v", panels, x, got[x], want[x])
					}
				}
			}
		})
	}
}

func TestSgemmNoAllocs(t *testing.T) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	p := &problem{m: 200, n: 300, k: 300}
	p.init(5)
	c := make([]float32, len(p.c))
	f := func() { SgemmPar(pool, false, false, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, c, p.ldc, false) }
	f()
	if n := testing.AllocsPerRun(20, f); n != 0 {
		t.Errorf("SgemmPar allocates %v times per call, want 0", n)
	}
	q := &problem{m: 200, n: 300, k: 300, transA: true, transB: true}
	q.init(6)
	g := func() { SgemmTrans(true, true, q.m, q.n, q.k, q.a, q.lda, q.b, q.ldb, c, q.ldc, true) }
	if n := testing.AllocsPerRun(20, g); n != 0 {
		t.Errorf("SgemmTrans allocates %v times per call, want 0", n)
	}
}

// TestKernelRun checks that one kernel call over several B panels gives
// the bits of a call per panel, for every row count, with and without
// accumulation, and leaves C alone past the tiles' rows and columns.
func TestKernelRun(t *testing.T) {
	const kc, panels, ldc = 13, 3, 3*nr + 5
	r := rand.New(rand.NewPCG(3, 9))
	a, b, c0 := randSlice(r, kc*mr), randSlice(r, panels*kc*nr), randSlice(r, mr*ldc)
	kernelModes(t, func(t *testing.T) {
		for rows := 1; rows <= mr; rows++ {
			for _, acc := range []bool{false, true} {
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				for p := range panels {
					kernel(rows, kc, 1, a, b[p*kc*nr:], want[p*nr:], ldc, acc, hint{})
				}
				kernel(rows, kc, panels, a, b, got, ldc, acc, hint{})
				for x := range got {
					if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
						t.Fatalf("rows=%d acc=%v: C[%d] (row %d, column %d) = %v, a call per panel gives %v", rows, acc, x, x/ldc, x%ldc, got[x], want[x])
					}
				}
			}
		}
	})
}

// TestSmallBlocks shrinks the cache blocking so that small problems run
// every loop of the driver many times, in both modes and on several pools.
func TestSmallBlocks(t *testing.T) {
	keepBlocks(t)
	kcBlock, mcBlock, ncBlock = 8, 12, 32
	pools := testPools(t, 0, 2, 3)
	kernelModes(t, func(t *testing.T) {
		for i, s := range [][3]int{{40, 70, 30}, {11, 100, 17}, {50, 20, 9}, {13, 33, 8}} {
			for v := range 8 {
				p := &problem{m: s[0], n: s[1], k: s[2], transA: v&1 != 0, transB: v&2 != 0, accumulate: v&4 != 0, padA: 1, padC: 2}
				p.init(uint64(1000 + 8*i + v))
				t.Run(p.String(), func(t *testing.T) {
					want := p.run(nil)
					p.check(t, p.c, want)
					for _, pool := range pools[1:] {
						got := p.run(pool)
						for x := range got {
							if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
								t.Fatalf("%d workers: C[%d] = %v, serial gives %v", pool.Workers(), x, got[x], want[x])
							}
						}
					}
				})
			}
		}
	})
}

// TestSgemmEpi checks each epilogue against the product that SgemmPar
// computes, biased and activated afterwards in the same order: row bias,
// column bias, then ReLU or elem.Tanh. The bits must agree, with partial
// tiles, several blocks of k (the epilogue runs after the last one only),
// accumulation, the transposed products (B transposed, few rows) and pools
// of every size.
func TestSgemmEpi(t *testing.T) {
	saved := keepBlocks(t)
	pools := testPools(t, 0, 2, 3)
	r := rand.New(rand.NewPCG(7, 8))
	kernelModes(t, func(t *testing.T) {
		for _, blocks := range [][3]int{saved, {8, 12, 32}} {
			kcBlock, mcBlock, ncBlock = blocks[0], blocks[1], blocks[2]
			for i, s := range [][3]int{{6, 16, 5}, {16, 100, 150}, {13, 35, 9}, {40, 70, 30}, {1, 17, 3}} {
				for v := range 12 {
					p := &problem{m: s[0], n: s[1], k: s[2], transB: i%2 == 1, accumulate: v&4 != 0, padC: 3}
					p.init(uint64(2000 + 8*i + v))
					var ep Epilogue
					if v&1 != 0 {
						ep.RowBias = randSlice(r, p.m)
					}
					if v&2 != 0 {
						ep.ColBias = randSlice(r, p.n)
					}
					ep.ReLU = v != 4 && v < 8
					ep.Tanh = v >= 8
					want := p.run(nil)
					for i := range p.m {
						row := want[i*p.ldc:][:p.n]
						for j := range row {
							if ep.RowBias != nil {
								row[j] += ep.RowBias[i]
							}
							if ep.ColBias != nil {
								row[j] += ep.ColBias[j]
							}
							if ep.ReLU && row[j] < 0 {
								row[j] = 0
							}
						}
						if ep.Tanh {
							elem.Tanh(row, row)
						}
					}
					t.Run(fmt.Sprintf("kc%d/%s/v%d", kcBlock, p, v), func(t *testing.T) {
						for _, pool := range pools {
							got := append([]float32(nil), p.c...)
							SgemmEpi(pool, p.transA, p.transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, got, p.ldc, p.accumulate, ep)
							sameBits(t, p.m*p.n, got, want)
						}
					})
				}
			}
		}
	})
	for what, ep := range map[string]Epilogue{
		"a row bias shorter than m": {RowBias: []float32{1}},
		"ReLU and Tanh":             {ReLU: true, Tanh: true},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SgemmEpi with %s did not panic", what)
				}
			}()
			SgemmEpi(nil, false, false, 2, 2, 1, make([]float32, 2), 1, make([]float32, 2), 2, make([]float32, 4), 2, false, ep)
		}()
	}
}

// TestSgemmRows checks that SgemmRows gives SgemmPar's bits and calls
// Done once for every row, each time with the rows' final values in C:
// a weight gradient's products split by row panels (several blocks of B
// with the small blocks), products split by columns, the transposed path
// and k = 0, serially and on pools of every size, with Reads to hint and
// too short to.
func TestSgemmRows(t *testing.T) {
	saved := keepBlocks(t)
	pools := testPools(t, 0, 2, 3)
	kernelModes(t, func(t *testing.T) {
		for _, blocks := range [][3]int{saved, {8, 12, 32}} {
			kcBlock, mcBlock, ncBlock = blocks[0], blocks[1], blocks[2]
			for i, s := range [][3]int{{120, 400, 64}, {300, 70, 600}, {10, 500, 64}, {64, 500, 300}, {7, 9, 0}, {37, 45, 13}} {
				p := &problem{m: s[0], n: s[1], k: s[2], transA: i != 3, accumulate: i == 5, padC: 2}
				p.init(uint64(400 + i))
				want := p.run(nil)
				for _, pool := range pools {
					for _, short := range []bool{false, true} {
						workers := 1
						if pool != nil {
							workers = pool.Workers()
						}
						name := fmt.Sprintf("kc%d/%s/%d workers/short %v", kcBlock, p, workers, short)
						got := append([]float32(nil), p.c...)
						done := make([]atomic.Int32, p.m)
						reads := [][]float32{make([]float32, len(p.c)), randSlice(rand.New(rand.NewPCG(1, 1)), len(p.c))}
						if short {
							reads = [][]float32{reads[0][:p.ldc]}
						}
						var bad atomic.Value
						u := &runtime.RowUpdate{Reads: reads, Done: func(r0, r1 int) {
							for r := r0; r < r1; r++ {
								done[r].Add(1)
								for j := range p.n {
									if x := r*p.ldc + j; got[x] != want[x] {
										bad.CompareAndSwap(nil, fmt.Sprintf("row %d handed over with C[%d] = %v, final %v", r, x, got[x], want[x]))
									}
								}
							}
						}}
						SgemmRows(pool, p.transA, p.transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, got, p.ldc, p.accumulate, u)
						if b := bad.Load(); b != nil {
							t.Fatalf("%s: %s", name, b)
						}
						for r := range done {
							if n := done[r].Load(); n != 1 {
								t.Fatalf("%s: row %d handed over %d times", name, r, n)
							}
						}
						sameBits(t, len(got), got, want)
					}
				}
			}
		}
	})
}

// TestRowHint checks that a row update's hints stay within the rows they
// are for, cover their cache lines where the trips are enough, and
// otherwise go a line at a time from the first row's start.
// TestUpdateHint checks that the AVX-512 kernel calls of a weight
// gradient's row panel hint its update's operands' rows, each operand by
// a run of the calls, within those rows, and every line of them where an
// operand has two calls or more and, a line apart, the hints for them.
func TestUpdateHint(t *testing.T) {
	const ldc, n = 500, 500
	ops := [][]float32{make([]float32, 40*ldc), make([]float32, 40*ldc)}
	for _, c := range []struct{ i, rows, kc, calls int }{
		{6, 6, 64, 8},  // the MLP's: 64 samples, 500 columns in calls of 64
		{30, 4, 64, 3}, // two calls for the weight, one for the momentum: too few hints
		{0, 6, 256, 1}, // one call: the weight only
		{12, 1, 64, 4}, // fewer lines than a call's hints
		{18, 3, 64, 6},
	} {
		g := &driver{call: call{n: n, ldc: ldc, update: &runtime.RowUpdate{Reads: ops}}}
		start, span := c.i*ldc, (c.rows-1)*ldc+n
		hinted := []map[uintptr]bool{{}, {}}
		hints, calls := []int{0, 0}, []int{0, 0}
		for call := range c.calls {
			o := call * len(ops) / c.calls
			h := g.updateHint(c.i, c.rows, c.kc, call, c.calls)
			base := uintptr(unsafe.Pointer(&ops[o][0]))
			calls[o]++
			for j := range c.kc / hintTrip * hintTrip {
				at := (int(h.at-base) + 4*j*h.stride) / 4
				if at < start || at >= start+span {
					t.Fatalf("%+v: call %d's hint %d at [%d] of operand %d, outside [%d, %d)", c, call, j, at, o, start, start+span)
				}
				hinted[o][(base+uintptr(4*at))/64] = true
				hints[o]++
			}
		}
		for o, x := range ops {
			base := uintptr(unsafe.Pointer(&x[0]))
			first, last := (base+uintptr(4*start))/64, (base+uintptr(4*(start+span-1)))/64
			lines := int(last-first) + 1
			if calls[o] >= 2 && hints[o] >= lines && len(hinted[o]) < lines {
				t.Errorf("%+v: operand %d: %d lines hinted of %d, with %d hints", c, o, len(hinted[o]), lines, hints[o])
			}
		}
	}
}

func TestRowHint(t *testing.T) {
	x := make([]float32, 40*500+16)
	for _, c := range []struct{ ldc, n, i, rows, trips int }{
		{500, 500, 6, 6, 8 * 16}, // a weight gradient's row panel: half its tiles
		{500, 500, 0, 6, 1000},   // more trips than lines
		{500, 490, 30, 4, 3},     // few trips
		{500, 500, 36, 4, 1},
		{500, 500, 0, 1, 0}, // no trip: no hint
	} {
		g := &driver{call: call{n: c.n, ldc: c.ldc}}
		h := g.rowHint(x, c.i, c.rows, c.trips)
		if c.trips == 0 {
			if h != (hint{}) {
				t.Errorf("%+v: %+v, want no hint", c, h)
			}
			continue
		}
		base := uintptr(unsafe.Pointer(&x[0]))
		start, span := c.i*c.ldc, (c.rows-1)*c.ldc+c.n
		lines := map[uintptr]bool{}
		for j := range c.trips {
			at := (int(h.at-base) + 4*j*h.stride) / 4
			if at < start || at >= start+span {
				t.Fatalf("%+v: hint %d at x[%d], outside [%d, %d)", c, j, at, start, start+span)
			}
			lines[(base+uintptr(4*at))/64] = true
		}
		need := ceilDiv(span, nr)
		if c.trips >= need && len(lines) < need {
			t.Errorf("%+v: %d lines hinted of %d", c, len(lines), need)
		}
		if c.trips < need && h.stride != nr {
			t.Errorf("%+v: hints %d floats apart with too few trips for the lines, want a line apart from the start", c, h.stride)
		}
	}
	if h := (&driver{call: call{n: 10, ldc: 10}}).rowHint(x[:50], 4, 2, 8); h != (hint{}) {
		t.Errorf("a slice shorter than the rows: %+v, want no hint", h)
	}
}
