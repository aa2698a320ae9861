package augment

import (
	"math"
	"strings"

	"github.com/cnnc/cnnc/runtime"
)

// Jitter changes an image's colours at random, torchvision's
// ColorJitter(Brightness, Contrast, Saturation, Hue) for float images in
// [0, 1]: each of the four adjustments with a non-zero amount is applied
// once, in a random order, with a factor drawn uniformly from
// [max(0, 1-j), 1+j] for brightness, contrast and saturation and a hue shift
// drawn from [-Hue, Hue] (a fraction of the colour circle, at most 0.5).
//
//	brightness  x*f
//	contrast    m + f*(x - m), m the mean grey value of the image
//	saturation  g + f*(x - g), g the pixel's grey value
//	hue         H + shift (mod 1) in HSV space
//
// Grey is 0.2989 R + 0.587 G + 0.114 B for three channels; for any other
// number of channels contrast uses the mean of all values and saturation
// and hue are skipped. Each step clamps to [0, 1], so values stay in the
// input range.
type Jitter struct {
	Brightness, Contrast, Saturation, Hue float64
}

// Apply implements Transform.
func (t Jitter) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	ops := [4]uint8{0, 1, 2, 3}
	for i := 3; i > 0; i-- { // a random order, as ColorJitter draws one
		j := rng.Intn(i + 1)
		ops[i], ops[j] = ops[j], ops[i]
	}
	in := src
	for _, op := range ops {
		switch op {
		case 0:
			if t.Brightness > 0 {
				brightness(dst, in, factor(t.Brightness, rng))
				in = dst
			}
		case 1:
			if t.Contrast > 0 {
				contrast(dst, in, c, h*w, factor(t.Contrast, rng))
				in = dst
			}
		case 2:
			if t.Saturation > 0 && c == 3 {
				saturation(dst, in, h*w, factor(t.Saturation, rng))
				in = dst
			}
		case 3:
			if t.Hue > 0 && c == 3 {
				hue(dst, in, h*w, t.Hue*(2*rng.Float64()-1))
				in = dst
			}
		}
	}
	return &in[0] == &dst[0]
}

func factor(j float64, rng *runtime.RNG) float32 {
	lo := max(0, 1-j)
	return float32(lo + (1+j-lo)*rng.Float64())
}

func clamp01(x float32) float32 {
	if x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

func grey(r, g, b float32) float32 {
	return 0.2989*r + 0.587*g + 0.114*b
}

func brightness(dst, src []float32, f float32) {
	for i, v := range src {
		dst[i] = clamp01(f * v)
	}
}

func contrast(dst, src []float32, c, hw int, f float32) {
	var sum float64
	if c == 3 {
		for i := range hw {
			sum += float64(grey(src[i], src[hw+i], src[2*hw+i]))
		}
		sum /= float64(hw)
	} else {
		for _, v := range src {
			sum += float64(v)
		}
		sum /= float64(len(src))
	}
	m := float32(sum)
	for i, v := range src {
		dst[i] = clamp01(m + f*(v-m))
	}
}

func saturation(dst, src []float32, hw int, f float32) {
	for i := range hw {
		r, g, b := src[i], src[hw+i], src[2*hw+i]
		y := grey(r, g, b)
		dst[i] = clamp01(y + f*(r-y))
		dst[hw+i] = clamp01(y + f*(g-y))
		dst[2*hw+i] = clamp01(y + f*(b-y))
	}
}

// hue shifts the hue of every pixel by shift turns, converting to HSV and
// back as torchvision's _rgb2hsv and _hsv2rgb do.
func hue(dst, src []float32, hw int, shift float64) {
	for i := range hw {
		r, g, b := float64(src[i]), float64(src[hw+i]), float64(src[2*hw+i])
		hh, s, v := rgbToHSV(r, g, b)
		hh += shift
		hh -= math.Floor(hh)
		r, g, b = hsvToRGB(hh, s, v)
		dst[i], dst[hw+i], dst[2*hw+i] = clamp01(float32(r)), clamp01(float32(g)), clamp01(float32(b))
	}
}

func rgbToHSV(r, g, b float64) (h, s, v float64) {
	maxc, minc := r, r
	if g > maxc {
		maxc = g
	} else if g < minc {
		minc = g
	}
	if b > maxc {
		maxc = b
	} else if b < minc {
		minc = b
	}
	v = maxc
	d := maxc - minc
	if d == 0 {
		return 0, 0, v
	}
	s = d / maxc
	switch {
	case maxc == r:
		h = (g - b) / d
	case maxc == g:
		h = 2 + (b-r)/d
	default:
		h = 4 + (r-g)/d
	}
	h = h/6 + 1
	return h - math.Floor(h), s, v
}

func hsvToRGB(h, s, v float64) (r, g, b float64) {
	h6 := h * 6
	i := math.Floor(h6)
	f := h6 - i
	p := v * (1 - s)
	q := v * (1 - s*f)
	t := v * (1 - s*(1-f))
	switch int(i) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}

func (t Jitter) String() string {
	if t.Brightness == t.Contrast && t.Contrast == t.Saturation && t.Hue == min(t.Brightness, 0.5) {
		return "jitter:" + ftoa(t.Brightness)
	}
	return "jitter:" + strings.Join([]string{ftoa(t.Brightness), ftoa(t.Contrast), ftoa(t.Saturation), ftoa(t.Hue)}, ":")
}
