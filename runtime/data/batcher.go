package data

import (
	"fmt"

	"github.com/cnnc/cnnc/runtime"
)

// A Batcher serves a Dataset in mini-batches, epoch after epoch. With an
// RNG it visits the samples in a new random order each epoch, drawn from the
// RNG so a seed reproduces a run; without one it visits them in order, as
// evaluation wants. It copies each batch into buffers the caller owns and
// does not allocate per batch.
type Batcher struct {
	// DropLast drops the last batch of an epoch when it is smaller than the
	// batch size, as PyTorch's DataLoader(drop_last=True) does.
	DropLast bool

	ds    *Dataset
	batch int
	rng   *runtime.RNG
	order []int32
	pos   int
	epoch int
}

// NewBatcher returns a Batcher of ds in batches of batch samples, shuffled
// with rng, or in order if rng is nil. It panics if batch < 1, which is a
// bug in the caller.
func NewBatcher(ds *Dataset, batch int, rng *runtime.RNG) *Batcher {
	if batch < 1 {
		panic(fmt.Sprintf("data: NewBatcher: batch size %d, want at least 1", batch))
	}
	b := &Batcher{ds: ds, batch: batch, rng: rng, order: make([]int32, ds.N)}
	for i := range b.order {
		b.order[i] = int32(i)
	}
	b.shuffle()
	return b
}

func (b *Batcher) shuffle() {
	if b.rng != nil {
		b.rng.Shuffle(len(b.order), func(i, j int) { b.order[i], b.order[j] = b.order[j], b.order[i] })
	}
}

// BatchSize returns the largest number of samples a batch holds.
func (b *Batcher) BatchSize() int {
	return b.batch
}

// Batches returns the number of batches Next returns per epoch.
func (b *Batcher) Batches() int {
	if b.DropLast {
		return b.ds.N / b.batch
	}
	return (b.ds.N + b.batch - 1) / b.batch
}

// Epoch returns the number of epochs finished so far.
func (b *Batcher) Epoch() int {
	return b.epoch
}

// SkipEpoch ends the current epoch without serving the rest of it, as Next
// does when it returns false: the next call of Next starts the next epoch,
// reshuffled. Calling it once per finished epoch brings a new Batcher with
// the same seed to where one that served those epochs stands, which is how
// a trainer resumes a run without storing the order.
func (b *Batcher) SkipEpoch() {
	b.pos = 0
	b.epoch++
	b.shuffle()
}

// Next copies the next batch of the current epoch into xbuf, n images of
// ImageSize values, and ybuf, n labels, and returns n and true. The last
// batch of an epoch may hold fewer than BatchSize samples, unless DropLast
// is set. At the end of the epoch Next returns 0 and false, and the
// following call starts the next epoch, reshuffled. It panics if a buffer is
// smaller than a full batch, which is a bug in the caller.
func (b *Batcher) Next(xbuf []float32, ybuf []int32) (n int, ok bool) {
	size := b.ds.ImageSize()
	if len(xbuf) < b.batch*size || len(ybuf) < b.batch {
		panic(fmt.Sprintf("data: Batcher.Next: buffers hold %d values and %d labels, want %d and %d", len(xbuf), len(ybuf), b.batch*size, b.batch))
	}
	n = min(b.batch, len(b.order)-b.pos)
	if n <= 0 || (b.DropLast && n < b.batch) {
		b.pos = 0
		b.epoch++
		b.shuffle()
		return 0, false
	}
	for k, i := range b.order[b.pos : b.pos+n] {
		copy(xbuf[k*size:(k+1)*size], b.ds.Image(int(i)))
		ybuf[k] = b.ds.Labels[i]
	}
	b.pos += n
	return n, true
}
