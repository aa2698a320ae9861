package runtime

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The golden values below come from an independent Python implementation of
// SplitMix64 and xoshiro256** (integer arithmetic modulo 2^64).

func TestSplitMix64Golden(t *testing.T) {
	// The first output of the reference splitmix64 generator seeded with 0.
	assert.Equal(t, uint64(0xe220a8397b1dcdaf), SplitMix64(0))
}

func TestRNGGolden(t *testing.T) {
	tests := []struct {
		seed uint64
		want []uint64
	}{
		{0, []uint64{0x99ec5f36cb75f2b4, 0xbf6e1f784956452a, 0x1a5f849d4933e6e0}},
		{42, []uint64{0x15780b2e0c2ec716, 0x6104d9866d113a7e, 0xae17533239e499a1}},
	}
	for _, tt := range tests {
		r := NewRNG(tt.seed)
		var got []uint64
		for range tt.want {
			got = append(got, r.Uint64())
		}
		assert.Equal(t, tt.want, got, "seed %d", tt.seed)
	}
}

func TestRNGReproducible(t *testing.T) {
	a, b, c := NewRNG(7), NewRNG(7), NewRNG(8)
	same, differ := true, false
	for range 1000 {
		x, y, z := a.Uint64(), b.Uint64(), c.Uint64()
		same = same && x == y
		differ = differ || x != z
	}
	assert.True(t, same, "two generators with seed 7 diverged")
	assert.True(t, differ, "seeds 7 and 8 gave the same sequence")

	a.Seed(3)
	b = NewRNG(3)
	assert.Equal(t, b.Perm(50), a.Perm(50), "Seed(3) differs from NewRNG(3)")
}

func TestRNGFloat64(t *testing.T) {
	r := NewRNG(1)
	const n = 100000
	sum, sum2 := 0.0, 0.0
	for range n {
		x := r.Float64()
		require.True(t, x >= 0 && x < 1, "Float64 = %v, outside [0, 1)", x)
		sum += x
		sum2 += x * x
	}
	mean := sum / n
	assert.InDelta(t, 0.5, mean, 0.005)
	assert.InDelta(t, 1.0/12, sum2/n-mean*mean, 0.002)
}

func TestRNGNormFloat64(t *testing.T) {
	r := NewRNG(2)
	const n = 100000
	sum, sum2 := 0.0, 0.0
	for range n {
		x := r.NormFloat64()
		require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "NormFloat64 = %v", x)
		sum += x
		sum2 += x * x
	}
	mean := sum / n
	assert.InDelta(t, 0, mean, 0.015)
	assert.InDelta(t, 1, sum2/n-mean*mean, 0.02)
}

func TestRNGIntn(t *testing.T) {
	r := NewRNG(3)
	for _, n := range []int{1, 2, 3, 7, 10, 1000, 1 << 40} {
		for range 1000 {
			x := r.Intn(n)
			require.True(t, x >= 0 && x < n, "Intn(%d) = %d", n, x)
		}
	}
	// Each of 10 values should come up about 10000 times in 100000 draws.
	var counts [10]int
	for range 100000 {
		counts[r.Intn(10)]++
	}
	for v, c := range counts {
		assert.InDelta(t, 10000, c, 500, "value %d", v)
	}
	assert.Panics(t, func() { r.Intn(0) })
}

func TestRNGPerm(t *testing.T) {
	r := NewRNG(4)
	for _, n := range []int{0, 1, 2, 10, 1000} {
		p := r.Perm(n)
		sorted := slices.Clone(p)
		slices.Sort(sorted)
		for i, v := range sorted {
			require.Equal(t, i, v, "Perm(%d) is not a permutation: %v", n, p)
		}
	}
	p := r.Perm(1000)
	moved := 0
	for i, v := range p {
		if i != v {
			moved++
		}
	}
	assert.Greater(t, moved, 900, "Perm(1000) left too many elements in place")
}

func TestUniform01Golden(t *testing.T) {
	// want is x>>40 for x = SplitMix64(seed ^ SplitMix64(step ^ SplitMix64(index))).
	tests := []struct {
		seed, step, index uint64
		want              uint32
	}{
		{0, 0, 0, 2327157},
		{1, 2, 3, 14035583},
		{42, 7, 123456, 8728297},
		{math.MaxUint64, 1, 2, 6575674},
	}
	for _, tt := range tests {
		got := Uniform01(tt.seed, tt.step, tt.index)
		assert.Equal(t, float32(tt.want)/(1<<24), got, "Uniform01(%d, %d, %d)", tt.seed, tt.step, tt.index)
		assert.Equal(t, got, Uniform01(tt.seed, tt.step, tt.index), "Uniform01 is not pure")
	}
}

func TestUniform01Distribution(t *testing.T) {
	// Sweep the index, as a dropout mask does, for a few seeds and steps.
	const n = 100000
	for _, key := range [][2]uint64{{0, 0}, {1, 0}, {1, 1}, {12345, 999}} {
		var buckets [20]int
		sum, sum2 := 0.0, 0.0
		for i := range uint64(n) {
			u := Uniform01(key[0], key[1], i)
			require.True(t, u >= 0 && u < 1, "Uniform01 = %v, outside [0, 1)", u)
			x := float64(u)
			sum += x
			sum2 += x * x
			buckets[int(u*20)]++
		}
		mean := sum / n
		assert.InDelta(t, 0.5, mean, 0.005, "seed %d step %d", key[0], key[1])
		assert.InDelta(t, 1.0/12, sum2/n-mean*mean, 0.002, "seed %d step %d", key[0], key[1])
		// Chi-squared with 19 degrees of freedom; 43.8 is its 0.999 quantile.
		chi2 := 0.0
		for _, c := range buckets {
			d := float64(c) - n/20
			chi2 += d * d / (n / 20)
		}
		assert.Less(t, chi2, 43.8, "seed %d step %d: buckets %v", key[0], key[1], buckets)
	}
	// Neighbouring steps must give unrelated masks.
	same := 0
	for i := range uint64(10000) {
		if (Uniform01(5, 1, i) < 0.5) == (Uniform01(5, 2, i) < 0.5) {
			same++
		}
	}
	assert.InDelta(t, 5000, same, 300, "masks of steps 1 and 2 are correlated")
}
