package runtime

import (
	"os"
	stdruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Pool is a fixed set of worker goroutines, started once, that kernels
// use to split loops. For does not start goroutines or allocate, so kernels
// can call it for every layer of every step.
//
// Between calls a worker spins for a while (spinTime) watching for the next
// one, yielding the processor now and then, before it parks on a channel. A
// training step calls For for every kernel, often with only a few
// microseconds of serial work between calls; waking a parked goroutine
// takes the Go scheduler tens of microseconds, as long as the work of a
// small kernel (BenchmarkPoolForGap).
//
// For splits its range into a few chunks per worker. Each worker runs the
// chunks of its own share from the front and then takes what is left of the
// others' shares from their ends, so a worker that starts late, or whose
// processor the machine gives to another program for a while, does not keep
// the others waiting: with static shares, the busiest worker set the pace
// of every kernel of a training step. That holds even where a static split
// saves the pool's calls altogether: the 10-layer MLP's step run with each
// of two workers computing its own half of every layer's features, the two
// waiting only for each other's halves (twice a layer, no For), took 14%
// longer than with For (medians of 89 and 60 interleaved pairs of 20
// steps, in the machine's two placements of the threads), the waits for
// the slower worker adding up to 500-600 us a step.
//
// A Pool runs one For at a time. A For that finds the pool busy, because it
// is nested inside another For's fn or races with a For on another
// goroutine, runs its chunks one after another on the calling goroutine, with
// the same boundaries, so it neither deadlocks nor changes the results of
// code that reduces per chunk.
type Pool struct {
	workers int
	w       []poolWorker // w[i] for worker i, 1 <= i < workers
	busy    atomic.Bool
	closed  atomic.Bool

	// calls counts the calls handed to the workers; a worker runs its
	// chunk of a call when it sees calls change.
	calls atomic.Uint64
	// pending counts the workers that have not yet finished the current
	// call: all of them acknowledge every call, so that none can mistake
	// the fields below for those of the next one.
	pending atomic.Int64

	// Set by For before it bumps calls, read by the workers after; one
	// of fn and fnw is nil.
	fn     func(lo, hi int)
	fnw    func(w, lo, hi int)
	n      int
	chunks int
}

// A poolWorker is how For wakes a parked worker, and the chunks of the
// current call that are still its own.
type poolWorker struct {
	parked atomic.Bool   // the worker waits, or is about to wait, on wake
	wake   chan struct{} // buffered: For sends one token to a parked worker
	// share holds the chunks [front, back) not yet taken, front in the
	// low 32 bits: the worker takes from the front, others from the back.
	share atomic.Uint64
	_     [40]byte // keep workers' flags on separate cache lines
}

// spinTime is how long an idle worker watches for the next call before it
// parks.
const spinTime = 100 * time.Microsecond

// NewPool starts a pool of workers goroutines, counting the caller's: it
// starts workers-1 goroutines, and For runs one chunk on the goroutine that
// calls it. A pool of fewer than one worker has one.
func NewPool(workers int) *Pool {
	workers = max(workers, 1)
	p := &Pool{workers: workers, w: make([]poolWorker, workers)}
	for i := 1; i < workers; i++ {
		p.w[i].wake = make(chan struct{}, 1)
		go p.work(i)
	}
	return p
}

func (p *Pool) work(i int) {
	var seen uint64
	for {
		seen = p.await(&p.w[i], seen)
		if p.closed.Load() {
			return
		}
		p.run(i)
		p.pending.Add(-1)
	}
}

// await returns the number of calls once it differs from seen: it spins
// for spinTime, then parks on w.wake. It returns at once when the pool is
// closed.
func (p *Pool) await(w *poolWorker, seen uint64) uint64 {
	t0 := time.Now()
	for spin := 1; ; spin++ {
		if c := p.calls.Load(); c != seen {
			return c
		}
		if spin%1024 == 0 {
			if time.Since(t0) > spinTime {
				break
			}
			stdruntime.Gosched()
		}
	}
	for {
		w.parked.Store(true)
		if c := p.calls.Load(); c != seen {
			// A call came after all. Unless For saw the flag and sent a
			// token, take the flag back; otherwise take the token.
			if !w.parked.CompareAndSwap(true, false) {
				<-w.wake
			}
			return c
		}
		if _, ok := <-w.wake; !ok {
			return seen
		}
		if c := p.calls.Load(); c != seen {
			return c
		}
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

// chunksPerWorker is how many chunks For makes per worker: enough that a
// worker that falls behind leaves work for the others to take.
const chunksPerWorker = 4

// run runs the chunks of worker i's share, then takes chunks from the
// ends of the other workers' shares until none is left.
func (p *Pool) run(i int) {
	for {
		c, ok := take(&p.w[i].share, false)
		if !ok {
			break
		}
		p.call(i, c)
	}
	for j := 1; j < p.workers; j++ {
		other := &p.w[(i+j)%p.workers].share
		for {
			c, ok := take(other, true)
			if !ok {
				break
			}
			p.call(i, c)
		}
	}
}

// call runs chunk c of the current call on worker i.
func (p *Pool) call(i, c int) {
	lo, hi := chunk(p.n, p.chunks, c)
	if p.fnw != nil {
		p.fnw(i, lo, hi)
		return
	}
	p.fn(lo, hi)
}

// take removes a chunk from share, its last one when back is set and its
// first otherwise, and reports false when share is empty.
func take(share *atomic.Uint64, back bool) (int, bool) {
	for {
		v := share.Load()
		f, b := uint32(v), uint32(v>>32)
		if f >= b {
			return 0, false
		}
		c, w := f, uint64(b)<<32|uint64(f+1)
		if back {
			c, w = b-1, uint64(b-1)<<32|uint64(f)
		}
		if share.CompareAndSwap(v, w) {
			return int(c), true
		}
	}
}

// For calls fn(lo, hi) on contiguous chunks that cover [0, n) exactly once
// and returns when all calls have returned. It makes min(n, 4*Workers())
// chunks, one with a single worker, whose bounds depend only on n and
// Workers(): chunk i is [i*n/k, (i+1)*n/k) for k chunks. Which goroutine
// runs which chunk depends on timing, so fn must give the same results
// whatever goroutine runs a chunk and in whatever order the chunks run.
// The calling goroutine starts with the first chunks. For with n <= 0
// does nothing. fn must not panic: a panic in a worker ends the
// program.
//
// For does not allocate; a closure passed as fn may, at the call site, if it
// captures variables and is built anew for each call.
func (p *Pool) For(n int, fn func(lo, hi int)) {
	p.forEach(n, chunksPerWorker*p.workers, fn, nil)
}

// ForWorker is For for fn that keeps scratch space per worker: it also
// passes fn the index, below Workers(), of the worker that runs the chunk,
// and no two chunks that run at the same time get the same index.
func (p *Pool) ForWorker(n int, fn func(w, lo, hi int)) {
	p.forEach(n, chunksPerWorker*p.workers, nil, fn)
}

// ForWorkerEach is ForWorker with a chunk for each index, fn(w, i, i+1)
// for i in [0, n), where the pool has several workers (with one, a single
// chunk, as For). Taking a chunk costs an atomic operation; for loops
// whose iterations each take microseconds, such as the tiles of a GEMM,
// that is little, and the workers then finish within one iteration of
// each other, where with 4 chunks each the last chunk could keep the
// others waiting for an eighth of the loop.
func (p *Pool) ForWorkerEach(n int, fn func(w, lo, hi int)) {
	p.forEach(n, n, nil, fn)
}

// forEach runs fn or fnw on min(n, most) chunks of [0, n).
func (p *Pool) forEach(n, most int, fn func(lo, hi int), fnw func(w, lo, hi int)) {
	if n <= 0 {
		return
	}
	k := min(n, most)
	if p.workers == 1 {
		k = 1
	}
	if k == 1 || p.closed.Load() || !p.busy.CompareAndSwap(false, true) {
		for i := range k {
			lo, hi := chunk(n, k, i)
			if fnw != nil {
				fnw(0, lo, hi)
			} else {
				fn(lo, hi)
			}
		}
		return
	}
	p.fn, p.fnw, p.n, p.chunks = fn, fnw, n, k
	for i := range p.workers {
		f, b := chunk(k, p.workers, i)
		p.w[i].share.Store(uint64(b)<<32 | uint64(f))
	}
	p.pending.Store(int64(p.workers - 1))
	p.calls.Add(1)
	for i := 1; i < p.workers; i++ {
		if w := &p.w[i]; w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	p.run(0)
	// Wait for the workers, yielding now and then: a worker may need this
	// goroutine's processor when there are more workers than processors.
	for spin := 1; p.pending.Load() != 0; spin++ {
		if spin%1024 == 0 {
			stdruntime.Gosched()
		}
	}
	p.fn, p.fnw = nil, nil
	p.busy.Store(false)
}

// Close stops the worker goroutines. For on a closed pool runs every chunk
// on the caller. Close must not be called while a For is running.
func (p *Pool) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.calls.Add(1)
	for i := 1; i < p.workers; i++ {
		close(p.w[i].wake)
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
