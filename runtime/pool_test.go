package runtime

import (
	stdruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunks runs p.For(n) and returns the chunks it was called with, sorted by
// their start.
func chunks(p *Pool, n int) [][2]int {
	var mu sync.Mutex
	got := make([][2]int, 0)
	p.For(n, func(lo, hi int) {
		mu.Lock()
		got = append(got, [2]int{lo, hi})
		mu.Unlock()
	})
	sortChunks(got)
	return got
}

func sortChunks(c [][2]int) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j][0] < c[j-1][0]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

func TestPoolChunks(t *testing.T) {
	tests := []struct {
		workers, n int
		want       [][2]int
	}{
		{1, 10, [][2]int{{0, 10}}},
		{4, 0, [][2]int{}},
		{4, -3, [][2]int{}},
		{4, 1, [][2]int{{0, 1}}},
		{4, 3, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		{2, 10, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 10}}},
		{2, 64, [][2]int{{0, 8}, {8, 16}, {16, 24}, {24, 32}, {32, 40}, {40, 48}, {48, 56}, {56, 64}}},
		{3, 100, [][2]int{{0, 8}, {8, 16}, {16, 25}, {25, 33}, {33, 41}, {41, 50}, {50, 58}, {58, 66}, {66, 75}, {75, 83}, {83, 91}, {91, 100}}},
		{0, 5, [][2]int{{0, 5}}}, // fewer than one worker means one
	}
	for _, tt := range tests {
		p := NewPool(tt.workers)
		assert.Equal(t, tt.want, chunks(p, tt.n), "workers %d, n %d", tt.workers, tt.n)
		p.Close()
		// A closed pool runs the same chunks on the caller.
		assert.Equal(t, tt.want, chunks(p, tt.n), "closed pool: workers %d, n %d", tt.workers, tt.n)
	}
}

func TestPoolCoversOnce(t *testing.T) {
	p := NewPool(5)
	defer p.Close()
	for _, n := range []int{1, 4, 5, 6, 99, 1000} {
		hits := make([]int32, n)
		for range 20 {
			p.For(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			})
		}
		for i, h := range hits {
			require.Equal(t, int32(20), h, "n %d: index %d visited %d times in 20 calls", n, i, h)
		}
	}
}

func TestPoolDeterministicSums(t *testing.T) {
	// Per-chunk partial sums combined in chunk order give the same bits on
	// every call.
	p := NewPool(4)
	defer p.Close()
	x := make([]float32, 10007)
	r := NewRNG(9)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	sum := func() float32 {
		var partial [4 * chunksPerWorker]float32
		p.For(len(x), func(lo, hi int) {
			var s float32
			for _, v := range x[lo:hi] {
				s += v
			}
			for i := range partial {
				if i*len(x)/len(partial) == lo {
					partial[i] = s
				}
			}
		})
		var total float32
		for _, s := range partial {
			total += s
		}
		return total
	}
	first := sum()
	for range 50 {
		require.Equal(t, first, sum())
	}
}

func TestPoolNoAllocs(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	out := make([]float32, 4096)
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] += 1
		}
	}
	p.For(len(out), fn) // warm up
	allocs := testing.AllocsPerRun(200, func() { p.For(len(out), fn) })
	assert.Zero(t, allocs, "Pool.For allocates")
}

func TestPoolNested(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	done := make(chan int)
	go func() {
		total := 0
		var mu sync.Mutex
		p.For(8, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				p.For(10, func(lo, hi int) {
					mu.Lock()
					total += hi - lo
					mu.Unlock()
				})
			}
		})
		done <- total
	}()
	select {
	case total := <-done:
		assert.Equal(t, 80, total)
	case <-time.After(10 * time.Second):
		t.Fatal("nested For deadlocked")
	}
}

func TestPoolConcurrentCallers(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var wg sync.WaitGroup
	sums := make([]int, 8)
	for g := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				var mu sync.Mutex
				p.For(50, func(lo, hi int) {
					mu.Lock()
					sums[g] += hi - lo
					mu.Unlock()
				})
			}
		}()
	}
	wg.Wait()
	for g, s := range sums {
		assert.Equal(t, 5000, s, "caller %d", g)
	}
}

func TestThreads(t *testing.T) {
	tests := []struct {
		env     string
		want    int // 0: GOMAXPROCS
		wantErr bool
	}{
		{"", 0, false},
		{"3", 3, false},
		{" 8 ", 8, false},
		{"0", 0, true},
		{"-2", 0, true},
		{"many", 0, true},
	}
	for _, tt := range tests {
		t.Setenv("CNNC_THREADS", tt.env)
		n, err := Threads()
		want := tt.want
		if want == 0 {
			want = stdruntime.GOMAXPROCS(0)
		}
		assert.Equal(t, want, n, "CNNC_THREADS=%q", tt.env)
		if tt.wantErr {
			require.Error(t, err, "CNNC_THREADS=%q", tt.env)
			assert.Contains(t, err.Error(), "is not a positive integer")
		} else {
			assert.NoError(t, err, "CNNC_THREADS=%q", tt.env)
		}
	}
	assert.GreaterOrEqual(t, DefaultPool().Workers(), 1)
	assert.Same(t, DefaultPool(), DefaultPool())
}

func BenchmarkPoolFor(b *testing.B) {
	p := NewPool(DefaultPool().Workers())
	defer p.Close()
	fn := func(lo, hi int) {}
	for b.Loop() {
		p.For(1024, fn)
	}
}

// BenchmarkPoolForGap times For of 20 us chunks after 20 us of serial work,
// as a training step calls it between small kernels: ns/For is what For
// takes beyond its chunk.
func BenchmarkPoolForGap(b *testing.B) {
	const work = 20 * time.Microsecond
	busy := func() {
		for t := time.Now(); time.Since(t) < work; {
		}
	}
	p := NewPool(2)
	defer p.Close()
	fn := func(lo, hi int) { busy() }
	var par time.Duration
	for b.Loop() {
		busy()
		t := time.Now()
		p.For(2, fn)
		par += time.Since(t)
	}
	b.ReportMetric(float64((par-time.Duration(b.N)*work).Nanoseconds())/float64(b.N), "ns/For")
}

// TestPoolForWorker checks that ForWorker and ForWorkerEach cover the
// range once, pass worker indices below Workers() and never run two chunks
// on one index at the same time, on a live pool and on a closed one, and
// that ForWorkerEach's chunks are single indices.
func TestPoolForWorker(t *testing.T) {
	p := NewPool(3)
	for _, closed := range []bool{false, true} {
		if closed {
			p.Close()
		}
		for _, each := range []bool{false, true} {
			for _, n := range []int{1, 2, 7, 64} {
				hits := make([]int32, n)
				var inUse [3]atomic.Bool
				var bad, wide atomic.Int32
				fn := func(w, lo, hi int) {
					if w < 0 || w >= p.Workers() || !inUse[w].CompareAndSwap(false, true) {
						bad.Add(1)
						return
					}
					if hi-lo != 1 {
						wide.Add(1)
					}
					for i := lo; i < hi; i++ {
						hits[i]++
					}
					time.Sleep(50 * time.Microsecond)
					inUse[w].Store(false)
				}
				if each {
					p.ForWorkerEach(n, fn)
				} else {
					p.ForWorker(n, fn)
				}
				require.Zero(t, bad.Load(), "closed %v, each %v, n %d: a chunk got a worker index out of range or in use", closed, each, n)
				for i, h := range hits {
					require.Equal(t, int32(1), h, "closed %v, each %v, n %d: index %d visited %d times", closed, each, n, i, h)
				}
				if each {
					require.Zero(t, wide.Load(), "closed %v, n %d: ForWorkerEach ran a chunk of several indices", closed, n)
				}
			}
		}
	}
}
