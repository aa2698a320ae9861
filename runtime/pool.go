package runtime

import (
	"os"
	stdruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// A Pool is a fixed set of worker goroutines, started once and parked
// between calls, that kernels use to split loops. For does not start
// goroutines or allocate, so kernels can call it for every layer of every
// step.
//
// A Pool runs one For at a time. A For that finds the pool busy, because it
// is nested inside another For's fn or races with a For on another
// goroutine, runs its chunks one after another on the calling goroutine, with
// the same boundaries, so it neither deadlocks nor changes the results of
// code that reduces per chunk.
type Pool struct {
	workers int
	start   []chan struct{} // start[i] wakes worker i (1 <= i < workers)
	done    sync.WaitGroup
	busy    atomic.Bool
	closed  atomic.Bool

	// Set by For before it wakes the workers, read by them after.
	fn     func(lo, hi int)
	n      int
	chunks int
}

// NewPool starts a pool of workers goroutines, counting the caller's: it
// starts workers-1 goroutines, and For runs one chunk on the goroutine that
// calls it. A pool of fewer than one worker has one.
func NewPool(workers int) *Pool {
	workers = max(workers, 1)
	p := &Pool{workers: workers, start: make([]chan struct{}, workers)}
	for i := 1; i < workers; i++ {
		p.start[i] = make(chan struct{})
		go p.work(i)
	}
	return p
}

func (p *Pool) work(i int) {
	for range p.start[i] {
		if i < p.chunks {
			lo, hi := chunk(p.n, p.chunks, i)
			p.fn(lo, hi)
		}
		p.done.Done()
	}
}

// Workers returns the number of workers, the caller of For included.
func (p *Pool) Workers() int {
	return p.workers
}

// chunk returns the bounds of chunk i of [0, n) split into k nearly equal
// contiguous chunks.
func chunk(n, k, i int) (lo, hi int) {
	return i * n / k, (i + 1) * n / k
}

// For calls fn(lo, hi) on contiguous chunks that cover [0, n) exactly once
// and returns when all calls have returned. It makes min(n, Workers()) chunks
// whose bounds depend only on n and Workers(): chunk i is
// [i*n/k, (i+1)*n/k) for k chunks. The calling goroutine runs chunk 0. For
// with n <= 0 does nothing. fn must not panic: a panic in a worker ends the
// program.
//
// For does not allocate; a closure passed as fn may, at the call site, if it
// captures variables and is built anew for each call.
func (p *Pool) For(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	k := min(n, p.workers)
	if k == 1 || p.closed.Load() || !p.busy.CompareAndSwap(false, true) {
		for i := range k {
			lo, hi := chunk(n, k, i)
			fn(lo, hi)
		}
		return
	}
	p.fn, p.n, p.chunks = fn, n, k
	p.done.Add(k - 1)
	for i := 1; i < k; i++ {
		p.start[i] <- struct{}{}
	}
	lo, hi := chunk(n, k, 0)
	fn(lo, hi)
	p.done.Wait()
	p.fn = nil
	p.busy.Store(false)
}

// Close stops the worker goroutines. For on a closed pool runs every chunk
// on the caller. Close must not be called while a For is running.
func (p *Pool) Close() {
	if p.closed.Swap(true) {
		return
	}
	for i := 1; i < p.workers; i++ {
		close(p.start[i])
	}
}

var (
	defaultPool     *Pool
	defaultPoolOnce sync.Once
)

// DefaultPool returns the process-wide pool that generated models use. It is
// created on first use with Threads() workers and never closed.
func DefaultPool() *Pool {
	defaultPoolOnce.Do(func() {
		n, _ := Threads()
		defaultPool = NewPool(n)
	})
	return defaultPool
}

// Threads returns the number of workers DefaultPool uses: the value of the
// environment variable CNNC_THREADS if it is set to a positive integer, and
// GOMAXPROCS otherwise. If CNNC_THREADS is set but not usable, it returns
// GOMAXPROCS and an error that a trainer can print as a warning.
func Threads() (int, error) {
	def := stdruntime.GOMAXPROCS(0)
	s, ok := os.LookupEnv("CNNC_THREADS")
	if !ok || strings.TrimSpace(s) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return def, &threadsError{value: s, def: def}
	}
	return n, nil
}

type threadsError struct {
	value string
	def   int
}

func (e *threadsError) Error() string {
	return "CNNC_THREADS=" + strconv.Quote(e.value) + " is not a positive integer; using " +
		strconv.Itoa(e.def) + " threads (GOMAXPROCS)"
}
