package runtime

import (
	"math"
	"math/bits"
)

// SplitMix64 returns the standard SplitMix64 mix of z: it adds the golden
// gamma 0x9e3779b97f4a7c15 and scrambles the sum with two xor-shift-multiply
// rounds. It is a pure function; Uniform01 and the seeding of RNG are built
// on it.
func SplitMix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uniform01 returns a number uniformly distributed in [0, 1) computed purely
// from seed, step and index, so that a dropout mask drawn in the forward pass
// can be recomputed, bit for bit, in the backward pass and on any device.
// Its exact definition, which the reference evaluator in ir and the CUDA
// kernels re-implement, is
//
//	x := SplitMix64(seed ^ SplitMix64(step ^ SplitMix64(index)))
//	return float32(x>>40) * (1.0 / (1 << 24))
//
// where SplitMix64 is the standard mix documented on that function. The top
// 24 bits of x give every float32 in [0, 1) that is a multiple of 2^-24,
// each with equal probability; the result is never 1.
func Uniform01(seed, step, index uint64) float32 {
	x := SplitMix64(seed ^ SplitMix64(step^SplitMix64(index)))
	return float32(x>>40) * (1.0 / (1 << 24))
}

// An RNG is a small, fast, deterministic pseudo-random number generator
// (xoshiro256**, by Blackman and Vigna). The same seed gives the same
// sequence on every platform and Go version. An RNG is not safe for
// concurrent use; give each goroutine its own.
type RNG struct {
	s [4]uint64
}

// NewRNG returns a generator seeded with seed. The four words of state are
// SplitMix64(seed + i*0x9e3779b97f4a7c15) for i = 0..3, as the xoshiro
// authors recommend, so every seed, zero included, gives a good state.
func NewRNG(seed uint64) *RNG {
	r := &RNG{}
	r.Seed(seed)
	return r
}

// Seed resets the generator to the state NewRNG(seed) would give.
func (r *RNG) Seed(seed uint64) {
	for i := range r.s {
		r.s[i] = SplitMix64(seed)
		seed += 0x9e3779b97f4a7c15
	}
}

// Uint64 returns the next 64 random bits.
func (r *RNG) Uint64() uint64 {
	s := &r.s
	result := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return result
}

// Float64 returns a uniform number in [0, 1) with 53 random bits; it
// consumes one Uint64.
func (r *RNG) Float64() float64 {
	return float64(r.Uint64()>>11) * (1.0 / (1 << 53))
}

// NormFloat64 returns a standard normal number, N(0, 1), by the Box-Muller
// transform. It consumes exactly two Uint64 draws and keeps no spare, so the
// sequence depends only on the number of calls.
func (r *RNG) NormFloat64() float64 {
	u1 := 1 - r.Float64() // in (0, 1], so the logarithm is finite
	u2 := r.Float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// Intn returns a uniform integer in [0, n), without modulo bias (Lemire's
// multiply-and-reject method). It panics if n <= 0.
func (r *RNG) Intn(n int) int {
	if n <= 0 {
		panic("runtime: RNG.Intn called with n <= 0")
	}
	bound := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(r.Uint64(), bound)
		}
	}
	return int(hi)
}

// Shuffle permutes n elements by calling swap(i, j), with a Fisher-Yates
// shuffle that walks i from n-1 down to 1.
func (r *RNG) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.Intn(i+1))
	}
}

// Perm returns a random permutation of [0, n).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}
