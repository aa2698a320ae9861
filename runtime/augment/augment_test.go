package augment

import (
	"fmt"
	"math"
	"testing"

	"github.com/cnnc/cnnc/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ramp returns an image whose pixels all differ: value (k*h+y)*w+x, scaled
// into [0, 1) when scaled is set.
func ramp(c, h, w int, scaled bool) []float32 {
	x := make([]float32, c*h*w)
	for i := range x {
		x[i] = float32(i)
		if scaled {
			x[i] /= float32(len(x))
		}
	}
	return x
}

// at returns pixel (k, y, x) of a CHW image.
func at(img []float32, h, w, k, y, x int) float32 {
	return img[(k*h+y)*w+x]
}

func TestFlipH(t *testing.T) {
	src := []float32{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9,
		10, 11, 12,
	} // 2 channels of 2x3
	dst := make([]float32, len(src))
	FlipH(dst, src, 2, 2, 3)
	assert.Equal(t, []float32{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}, dst)
	FlipV(dst, src, 2, 2, 3)
	assert.Equal(t, []float32{4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9}, dst)
}

func TestFlipTwiceIsIdentity(t *testing.T) {
	for _, flip := range []func(dst, src []float32, c, h, w int){FlipH, FlipV} {
		src := ramp(3, 5, 7, false)
		a, b := make([]float32, len(src)), make([]float32, len(src))
		flip(a, src, 3, 5, 7)
		assert.NotEqual(t, src, a)
		flip(b, a, 3, 5, 7)
		assert.Equal(t, src, b)
	}
}

func TestRotate90IsTransposeAndFlip(t *testing.T) {
	for _, n := range []int{4, 5} {
		c := 2
		src := ramp(c, n, n, false)
		got := make([]float32, len(src))
		Rotate(got, src, c, n, n, 90)
		// Counter-clockwise: the top row comes from the right column,
		// dst[y][x] = src[x][n-1-y], the transpose flipped top to bottom.
		for k := range c {
			for y := range n {
				for x := range n {
					require.InDelta(t, at(src, n, n, k, x, n-1-y), at(got, n, n, k, y, x), 1e-4, "n=%d (%d,%d,%d)", n, k, y, x)
				}
			}
		}
		// Four quarter turns give the image back; -90 undoes 90.
		back := make([]float32, len(src))
		Rotate(back, got, c, n, n, -90)
		assert.InDeltaSlice(t, src, back, 1e-4)
		Rotate(back, src, c, n, n, 0)
		assert.Equal(t, src, back, "rotation by 0")
	}
}

func TestRotateZeroFill(t *testing.T) {
	n := 8
	src := make([]float32, n*n)
	for i := range src {
		src[i] = 1
	}
	dst := make([]float32, n*n)
	Rotate(dst, src, 1, n, n, 45)
	assert.Equal(t, float32(0), dst[0], "a corner comes from outside")
	assert.InDelta(t, 1, dst[(n/2)*n+n/2], 1e-6, "the centre stays")
}

func TestTranslate(t *testing.T) {
	src := ramp(2, 4, 5, false)
	dst := make([]float32, len(src))
	Translate(dst, src, 2, 4, 5, 0, 0)
	assert.Equal(t, src, dst, "translation by 0")
	Translate(dst, src, 2, 4, 5, 1, -2)
	for k := range 2 {
		for y := range 4 {
			for x := range 5 {
				want := float32(0)
				if sy, sx := y-1, x+2; sy >= 0 && sx < 5 {
					want = at(src, 4, 5, k, sy, sx)
				}
				assert.Equal(t, want, at(dst, 4, 5, k, y, x), "(%d,%d,%d)", k, y, x)
			}
		}
	}
	Translate(dst, src, 2, 4, 5, 0, 9)
	assert.Equal(t, make([]float32, len(src)), dst, "moved out entirely")
}

func TestResizeCrop(t *testing.T) {
	src := ramp(3, 6, 6, false)
	dst := make([]float32, len(src))
	ResizeCrop(dst, src, 3, 6, 6, 0, 0, 6, 6)
	assert.Equal(t, src, dst, "the whole image at its own size")
	// A 3x3 window scaled by 2: pixel centres of the output fall at
	// (i+0.5)/2-0.5 in the window, so output (1,1) is the mean of the
	// window's (0,0),(0,1),(1,0),(1,1) weighted 9/16, 3/16, 3/16, 1/16.
	ResizeCrop(dst, src, 3, 6, 6, 2, 1, 3, 3)
	w := func(y, x int) float32 { return at(src, 6, 6, 1, 2+y, 1+x) }
	want := (9*w(0, 0) + 3*w(0, 1) + 3*w(1, 0) + w(1, 1)) / 16
	assert.InDelta(t, want, at(dst, 6, 6, 1, 1, 1), 1e-4)
	assert.Equal(t, w(0, 0), at(dst, 6, 6, 1, 0, 0), "edges clamp")
	assert.Equal(t, w(2, 2), at(dst, 6, 6, 1, 5, 5), "edges clamp")
}

func TestRandomTransformsIdentity(t *testing.T) {
	tests := []Transform{
		Crop{Pad: 0},
		RandomTranslate{Frac: 0},
		RandomRotate{Degrees: 0},
		HFlip{P: 0},
		VFlip{P: 0},
		ResizedCrop{MinScale: 1, MinRatio: 1, MaxRatio: 1},
		Jitter{},
	}
	for _, tr := range tests {
		t.Run(fmt.Sprintf("%T", tr), func(t *testing.T) {
			rng := runtime.NewRNG(3)
			src := ramp(3, 6, 6, true)
			orig := append([]float32(nil), src...)
			p := Pipeline{tr}
			for range 20 {
				p.Apply(src, 3, 6, 6, rng, NewScratch(0))
			}
			assert.Equal(t, orig, src)
		})
	}
}

func TestRandomFlipP1(t *testing.T) {
	src := ramp(1, 3, 4, false)
	want := make([]float32, len(src))
	FlipH(want, src, 1, 3, 4)
	Pipeline{HFlip{P: 1}}.Apply(src, 1, 3, 4, runtime.NewRNG(0), NewScratch(12))
	assert.Equal(t, want, src)
}

// TestCropIsShift checks that a padded crop only moves the image, by at
// most the padding, and that every offset turns up.
func TestCropIsShift(t *testing.T) {
	const n, pad = 6, 2
	src := ramp(1, n, n, false)
	for i := range src {
		src[i]++ // no zero pixels, so the fill is visible
	}
	seen := map[[2]int]bool{}
	rng := runtime.NewRNG(1)
	dst := make([]float32, len(src))
	for range 400 {
		if !(Crop{Pad: pad}).Apply(dst, src, 1, n, n, rng) {
			seen[[2]int{0, 0}] = true
			continue
		}
		found := false
		for ty := -pad; ty <= pad && !found; ty++ {
			for tx := -pad; tx <= pad && !found; tx++ {
				want := make([]float32, len(src))
				Translate(want, src, 1, n, n, ty, tx)
				if assert.ObjectsAreEqual(want, dst) {
					seen[[2]int{ty, tx}] = true
					found = true
				}
			}
		}
		require.True(t, found, "crop output is not a shift by at most %d: %v", pad, dst)
	}
	assert.Len(t, seen, (2*pad+1)*(2*pad+1))
}

func TestResizedCropWindow(t *testing.T) {
	tr := ResizedCrop{MinScale: 0.5, MinRatio: 3.0 / 4, MaxRatio: 4.0 / 3}
	rng := runtime.NewRNG(9)
	for range 1000 {
		top, left, ch, cw := tr.window(20, 30, rng)
		require.True(t, top >= 0 && left >= 0 && ch >= 1 && cw >= 1 && top+ch <= 20 && left+cw <= 30, "window %d,%d %dx%d", top, left, ch, cw)
		area := float64(ch*cw) / 600
		assert.True(t, area > 0.45 && area <= 1.05, "area fraction %v", area)
	}
}

func TestJitterStaysInRange(t *testing.T) {
	for _, c := range []int{1, 3} {
		rng := runtime.NewRNG(4)
		tr := Jitter{Brightness: 0.9, Contrast: 0.9, Saturation: 0.9, Hue: 0.5}
		src := ramp(c, 8, 8, true)
		src[0], src[len(src)-1] = 0, 1
		dst := make([]float32, len(src))
		changed := false
		for range 50 {
			require.True(t, tr.Apply(dst, src, c, 8, 8, rng))
			for i, v := range dst {
				require.True(t, v >= 0 && v <= 1, "c=%d value %d = %v", c, i, v)
			}
			changed = changed || !assert.ObjectsAreEqual(src, dst)
		}
		assert.True(t, changed, "jitter never changed the image")
	}
}

func TestJitterFactors(t *testing.T) {
	// A grey image keeps its colour under saturation and hue, and
	// brightness 1+-0 is the identity.
	src := []float32{0.2, 0.4, 0.2, 0.4, 0.2, 0.4} // 3 channels of 1x2
	dst := make([]float32, 6)
	rng := runtime.NewRNG(1)
	(Jitter{Saturation: 0.9, Hue: 0.3}).Apply(dst, src, 3, 1, 2, rng)
	// torchvision's grey weights add up to 0.9999, hence the tolerance.
	assert.InDeltaSlice(t, src, dst, 1e-4)
	// Contrast 0 would give the mean; check the formula at a known factor.
	contrast(dst[:2], []float32{0.2, 0.6}, 1, 2, 0.5)
	assert.InDeltaSlice(t, []float32{0.3, 0.5}, dst[:2], 1e-6)
	// A hue shift of 1/3 turns red into green.
	hue(dst[:3], []float32{1, 0, 0}, 1, 1.0/3)
	assert.InDeltaSlice(t, []float32{0, 1, 0}, dst[:3], 1e-6)
}

func TestHSVRoundTrip(t *testing.T) {
	rng := runtime.NewRNG(2)
	for range 1000 {
		r, g, b := rng.Float64(), rng.Float64(), rng.Float64()
		h, s, v := rgbToHSV(r, g, b)
		r2, g2, b2 := hsvToRGB(h, s, v)
		require.InDelta(t, r, r2, 1e-12)
		require.InDelta(t, g, g2, 1e-12)
		require.InDelta(t, b, b2, 1e-12)
	}
}

// TestApplyBatchDeterministic augments the same batch on pools of 1, 2, 3
// and 8 workers and without a pool, and wants the same bits.
func TestApplyBatchDeterministic(t *testing.T) {
	const n, c, h, w = 13, 3, 8, 8
	p, err := Parse("flip,vflip,crop:2,scale:0.5,rotate:30,translate:0.2,jitter:0.3", c, h, w)
	require.NoError(t, err)
	base := make([]float32, n*c*h*w)
	rng := runtime.NewRNG(5)
	for i := range base {
		base[i] = float32(rng.Float64())
	}
	run := func(pool *runtime.Pool, seed, step uint64) []float32 {
		x := append([]float32(nil), base...)
		p.ApplyBatch(pool, x, n, c, h, w, seed, step)
		return x
	}
	want := run(nil, 1, 7)
	assert.NotEqual(t, base, want)
	for _, workers := range []int{1, 2, 3, 8} {
		pool := runtime.NewPool(workers)
		assert.Equal(t, want, run(pool, 1, 7), "%d workers", workers)
		pool.Close()
	}
	assert.NotEqual(t, want, run(nil, 1, 8), "another step")
	assert.NotEqual(t, want, run(nil, 2, 7), "another seed")
	// Each sample depends on its own index only.
	one := append([]float32(nil), base[4*c*h*w:5*c*h*w]...)
	p.ApplySample(one, c, h, w, 1, 7, 4, NewScratch(0))
	assert.Equal(t, want[4*c*h*w:5*c*h*w], one)
}

func TestApplyAllocations(t *testing.T) {
	const n, c, h, w = 32, 3, 16, 16
	p, err := Parse("flip,crop:4,scale:0.6,rotate:10,translate:0.1,jitter:0.2", c, h, w)
	require.NoError(t, err)
	x := make([]float32, n*c*h*w)
	s := NewScratch(c * h * w)
	perSample := testing.AllocsPerRun(20, func() {
		p.ApplySample(x[:c*h*w], c, h, w, 1, 2, 3, s)
	})
	assert.Zero(t, perSample, "allocations per sample")
	pool := runtime.NewPool(2)
	defer pool.Close()
	perBatch := testing.AllocsPerRun(20, func() {
		p.ApplyBatch(pool, x, n, c, h, w, 1, 2)
	})
	assert.LessOrEqual(t, perBatch, 2.0, "allocations per batch of %d", n)
}

func TestApplyWrongSize(t *testing.T) {
	assert.Panics(t, func() {
		Pipeline{HFlip{P: 1}}.Apply(make([]float32, 5), 1, 2, 2, runtime.NewRNG(0), NewScratch(4))
	})
	assert.Panics(t, func() {
		Pipeline{HFlip{P: 1}}.ApplyBatch(nil, make([]float32, 5), 2, 1, 2, 2, 0, 0)
	})
}

func TestRotateRandomSpread(t *testing.T) {
	// Angles are uniform in [-D, D]: the mean of many rotations of a
	// single bright pixel off the centre is symmetric about the x axis.
	const n = 9
	src := make([]float32, n*n)
	src[4*n+8] = 1 // right edge, middle row
	sum := make([]float64, n*n)
	rng := runtime.NewRNG(11)
	dst := make([]float32, n*n)
	for range 2000 {
		(RandomRotate{Degrees: 40}).Apply(dst, src, 1, n, n, rng)
		for i, v := range dst {
			sum[i] += float64(v)
		}
	}
	for y := range n {
		for x := range n {
			assert.InDelta(t, sum[y*n+x], sum[(n-1-y)*n+x], 0.1*2000/16+1, "(%d,%d)", y, x)
		}
	}
	assert.Greater(t, sum[2*n+8]+sum[3*n+8], 100.0, "some rotation moves the pixel up")
	assert.Zero(t, math.Round(sum[8*n+4]), "nothing rotates by 90 degrees")
}

// BenchmarkApplyBatch augments a CIFAR-sized batch of 64 3x32x32 images.
func BenchmarkApplyBatch(b *testing.B) {
	for _, spec := range []string{"flip,crop:4", "flip,crop:4,scale:0.8,rotate:15,translate:0.1,jitter:0.2"} {
		b.Run(spec, func(b *testing.B) {
			const n, c, h, w = 64, 3, 32, 32
			p, err := Parse(spec, c, h, w)
			require.NoError(b, err)
			x := make([]float32, n*c*h*w)
			pool := runtime.NewPool(2)
			defer pool.Close()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				p.ApplyBatch(pool, x, n, c, h, w, 1, uint64(i))
			}
		})
	}
}
