package augment

import (
	"fmt"
	"strings"
	"sync"

	"github.com/cnnc/cnnc/runtime"
)

// A Transform is one random augmentation. Apply draws its random choices
// from rng and writes the transformed image src into dst, both of c*h*w
// values in CHW order and not overlapping, and returns true; or, when it
// draws the identity (a flip that does not flip), it leaves dst alone and
// returns false, so the caller keeps src. Apply must not allocate. String
// gives the transform in Parse's syntax.
type Transform interface {
	Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool
	String() string
}

// A Pipeline applies its transforms one after another.
type Pipeline []Transform

// String returns p in Parse's syntax; Parse(p.String(), ...) gives back p.
func (p Pipeline) String() string {
	if len(p) == 0 {
		return "none"
	}
	parts := make([]string, len(p))
	for i, t := range p {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

// A Scratch holds what one worker needs to apply a Pipeline to a sample:
// two image buffers and a random number generator. It is not safe for
// concurrent use.
type Scratch struct {
	a, b []float32
	rng  runtime.RNG
}

// NewScratch returns a Scratch for images of size values.
func NewScratch(size int) *Scratch {
	return &Scratch{a: make([]float32, size), b: make([]float32, size)}
}

// RNG returns the scratch's generator, which ApplySample seeds.
func (s *Scratch) RNG() *runtime.RNG {
	return &s.rng
}

func (s *Scratch) grow(size int) {
	if cap(s.a) < size {
		s.a, s.b = make([]float32, size), make([]float32, size)
	}
	s.a, s.b = s.a[:size], s.b[:size]
}

// Apply augments the image x of c*h*w values in place, drawing from rng and
// using s's buffers. It panics if x has the wrong size, a bug in the
// caller.
func (p Pipeline) Apply(x []float32, c, h, w int, rng *runtime.RNG, s *Scratch) {
	size := c * h * w
	if len(x) != size {
		panic(fmt.Sprintf("augment: Pipeline.Apply: image has %d values, want %d (%dx%dx%d)", len(x), size, c, h, w))
	}
	if len(p) == 0 || size == 0 {
		return
	}
	s.grow(size)
	cur := x
	for _, t := range p {
		dst := s.a
		if &cur[0] == &s.a[0] {
			dst = s.b
		}
		if t.Apply(dst, cur, c, h, w, rng) {
			cur = dst
		}
	}
	if &cur[0] != &x[0] {
		copy(x, cur)
	}
}

// SampleSeed returns the seed of the generator that augments sample index
// of step step of a run seeded with seed. It is a hash of the three, kept
// apart from runtime.Uniform01's so that augmentation and dropout draw
// independent numbers from the same seed.
func SampleSeed(seed, step, index uint64) uint64 {
	const domain = 0x6175676d656e74 // "augment"
	return runtime.SplitMix64(seed ^ domain ^ runtime.SplitMix64(step^runtime.SplitMix64(index)))
}

// ApplySample augments sample index of step step in place: it seeds s's
// generator with SampleSeed(seed, step, index) and applies p.
func (p Pipeline) ApplySample(x []float32, c, h, w int, seed, step, index uint64, s *Scratch) {
	s.rng.Seed(SampleSeed(seed, step, index))
	p.Apply(x, c, h, w, &s.rng, s)
}

var scratchPool sync.Pool // of *Scratch

// ApplyBatch augments the first n images of x, each of c*h*w values, in
// place and in parallel on pool (serially if pool is nil). Sample i is
// augmented by ApplySample with index i, so the result depends on seed, step
// and i alone, not on the number of workers; a trainer passes its run's seed
// and a step counter that grows with every batch. ApplyBatch takes scratch
// buffers from a sync.Pool and allocates nothing per sample.
func (p Pipeline) ApplyBatch(pool *runtime.Pool, x []float32, n, c, h, w int, seed, step uint64) {
	size := c * h * w
	if len(x) < n*size {
		panic(fmt.Sprintf("augment: ApplyBatch: x holds %d values, want %d images of %dx%dx%d", len(x), n, c, h, w))
	}
	if len(p) == 0 || n <= 0 {
		return
	}
	work := func(lo, hi int) {
		s, _ := scratchPool.Get().(*Scratch)
		if s == nil {
			s = NewScratch(size)
		}
		for i := lo; i < hi; i++ {
			p.ApplySample(x[i*size:(i+1)*size], c, h, w, seed, step, uint64(i), s)
		}
		scratchPool.Put(s)
	}
	if pool == nil {
		work(0, n)
		return
	}
	pool.For(n, work)
}
