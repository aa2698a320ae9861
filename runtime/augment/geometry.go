package augment

import (
	"math"
	"strconv"

	"github.com/cnnc/cnnc/runtime"
)

// FlipH writes src mirrored left to right into dst.
func FlipH(dst, src []float32, c, h, w int) {
	for p := range c * h {
		row := src[p*w : (p+1)*w]
		out := dst[p*w : (p+1)*w]
		for x, v := range row {
			out[w-1-x] = v
		}
	}
}

// FlipV writes src mirrored top to bottom into dst.
func FlipV(dst, src []float32, c, h, w int) {
	for ch := range c {
		plane := ch * h * w
		for y := range h {
			copy(dst[plane+(h-1-y)*w:plane+(h-y)*w], src[plane+y*w:plane+(y+1)*w])
		}
	}
}

// Translate writes src moved down by ty and right by tx pixels into dst,
// filling what comes in from outside with 0: dst[y][x] = src[y-ty][x-tx].
func Translate(dst, src []float32, c, h, w, ty, tx int) {
	for ch := range c {
		plane := ch * h * w
		for y := range h {
			out := dst[plane+y*w : plane+(y+1)*w]
			sy := y - ty
			if sy < 0 || sy >= h {
				clear(out)
				continue
			}
			row := src[plane+sy*w : plane+(sy+1)*w]
			// Columns x with 0 <= x-tx < w.
			lo, hi := max(tx, 0), min(w+tx, w)
			if lo >= hi {
				clear(out)
				continue
			}
			clear(out[:lo])
			copy(out[lo:hi], row[lo-tx:hi-tx])
			clear(out[hi:])
		}
	}
}

// Rotate writes src rotated counter-clockwise by degrees about its centre
// into dst, as torchvision's rotate does: each output pixel samples the
// input bilinearly at the inversely rotated position, and positions outside
// the input count as 0.
func Rotate(dst, src []float32, c, h, w int, degrees float64) {
	rad := degrees * math.Pi / 180
	sin, cos := math.Sincos(rad)
	// Snap the multiples of 90 degrees so they move pixels exactly.
	if math.Abs(sin) < 1e-12 {
		sin = 0
	}
	if math.Abs(cos) < 1e-12 {
		cos = 0
	}
	cx, cy := float64(w-1)/2, float64(h-1)/2
	hw := h * w
	for y := range h {
		dy := float64(y) - cy
		for x := range w {
			dx := float64(x) - cx
			sx := cx + cos*dx - sin*dy
			sy := cy + sin*dx + cos*dy
			// The four neighbours of (sy, sx) and their weights, with
			// the weight of a neighbour outside the image set to 0.
			fx0, fy0 := math.Floor(sx), math.Floor(sy)
			ix, iy := int(fx0), int(fy0)
			out := y*w + x
			if iy < -1 || iy >= h || ix < -1 || ix >= w {
				for k := range c {
					dst[k*hw+out] = 0
				}
				continue
			}
			fx, fy := float32(sx-fx0), float32(sy-fy0)
			var idx [4]int
			wt := [4]float32{(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx}
			for j, d := range [4][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
				yy, xx := iy+d[0], ix+d[1]
				if yy < 0 || yy >= h || xx < 0 || xx >= w {
					wt[j] = 0
					continue
				}
				idx[j] = yy*w + xx
			}
			for k := range c {
				plane := src[k*hw : (k+1)*hw]
				dst[k*hw+out] = wt[0]*plane[idx[0]] + wt[1]*plane[idx[1]] + wt[2]*plane[idx[2]] + wt[3]*plane[idx[3]]
			}
		}
	}
}

// ResizeCrop writes the window of src at rows [top, top+ch) and columns
// [left, left+cw) resized to h x w into dst, by bilinear interpolation
// with PyTorch's align_corners=False convention (pixel centres at
// half-integers, edges clamped). The window must lie inside src.
func ResizeCrop(dst, src []float32, c, h, w, top, left, ch, cw int) {
	sy, sx := float64(ch)/float64(h), float64(cw)/float64(w)
	for y := range h {
		y0, y1, fy := bilinearIndex(y, sy, ch)
		for x := range w {
			x0, x1, fx := bilinearIndex(x, sx, cw)
			for k := range c {
				plane := src[k*h*w:]
				r0 := plane[(top+y0)*w+left:]
				r1 := plane[(top+y1)*w+left:]
				a := r0[x0] + fx*(r0[x1]-r0[x0])
				b := r1[x0] + fx*(r1[x1]-r1[x0])
				dst[(k*h+y)*w+x] = a + fy*(b-a)
			}
		}
	}
}

// bilinearIndex returns the two source indices and the weight of the second
// for output index i when an axis of n source pixels is scaled by 1/scale.
func bilinearIndex(i int, scale float64, n int) (i0, i1 int, f float32) {
	s := max((float64(i)+0.5)*scale-0.5, 0)
	i0 = min(int(s), n-1)
	i1 = min(i0+1, n-1)
	return i0, i1, float32(s - float64(i0))
}

// HFlip flips an image left to right with probability P.
type HFlip struct{ P float64 }

// Apply implements Transform.
func (t HFlip) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	if rng.Float64() >= t.P {
		return false
	}
	FlipH(dst, src, c, h, w)
	return true
}

func (t HFlip) String() string { return withP("flip", t.P) }

// VFlip flips an image top to bottom with probability P.
type VFlip struct{ P float64 }

// Apply implements Transform.
func (t VFlip) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	if rng.Float64() >= t.P {
		return false
	}
	FlipV(dst, src, c, h, w)
	return true
}

func (t VFlip) String() string { return withP("vflip", t.P) }

func withP(name string, p float64) string {
	if p == 0.5 {
		return name
	}
	return name + ":" + ftoa(p)
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// Crop pads an image with Pad zeros on every side and crops an h x w
// window at a uniformly random offset, torchvision's RandomCrop(size,
// padding=Pad): the image moves by up to Pad pixels in each direction.
type Crop struct{ Pad int }

// Apply implements Transform.
func (t Crop) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	if t.Pad <= 0 {
		return false
	}
	oy, ox := rng.Intn(2*t.Pad+1), rng.Intn(2*t.Pad+1)
	if oy == t.Pad && ox == t.Pad {
		return false
	}
	Translate(dst, src, c, h, w, t.Pad-oy, t.Pad-ox)
	return true
}

func (t Crop) String() string { return "crop:" + strconv.Itoa(t.Pad) }

// ResizedCrop crops a random window and resizes it back to h x w,
// torchvision's RandomResizedCrop: the window covers a fraction of the
// image's area drawn uniformly from [MinScale, 1], its aspect ratio
// (width/height) is log-uniform in [MinRatio, MaxRatio], and its position is
// uniform; after 10 draws that do not fit it takes the largest centred
// window of an allowed ratio.
type ResizedCrop struct {
	MinScale           float64
	MinRatio, MaxRatio float64
}

// Apply implements Transform.
func (t ResizedCrop) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	top, left, ch, cw := t.window(h, w, rng)
	if ch == h && cw == w {
		return false
	}
	ResizeCrop(dst, src, c, h, w, top, left, ch, cw)
	return true
}

// window draws the crop window as torchvision's
// RandomResizedCrop.get_params does.
func (t ResizedCrop) window(h, w int, rng *runtime.RNG) (top, left, ch, cw int) {
	area := float64(h * w)
	lo, hi := math.Log(t.MinRatio), math.Log(t.MaxRatio)
	for range 10 {
		target := area * (t.MinScale + (1-t.MinScale)*rng.Float64())
		ratio := math.Exp(lo + (hi-lo)*rng.Float64())
		cw = int(math.RoundToEven(math.Sqrt(target * ratio)))
		ch = int(math.RoundToEven(math.Sqrt(target / ratio)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			return rng.Intn(h - ch + 1), rng.Intn(w - cw + 1), ch, cw
		}
	}
	in := float64(w) / float64(h)
	switch {
	case in < t.MinRatio:
		cw, ch = w, int(math.RoundToEven(float64(w)/t.MinRatio))
	case in > t.MaxRatio:
		ch, cw = h, int(math.RoundToEven(float64(h)*t.MaxRatio))
	default:
		ch, cw = h, w
	}
	ch, cw = max(min(ch, h), 1), max(min(cw, w), 1)
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}

func (t ResizedCrop) String() string {
	s := "scale:" + ftoa(t.MinScale)
	if t.MinRatio != 3.0/4 || t.MaxRatio != 4.0/3 {
		s += ":" + ftoa(t.MinRatio) + ":" + ftoa(t.MaxRatio)
	}
	return s
}

// RandomRotate rotates an image by an angle drawn uniformly from
// [-Degrees, Degrees], counter-clockwise for positive angles (Rotate).
type RandomRotate struct{ Degrees float64 }

// Apply implements Transform.
func (t RandomRotate) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	a := t.Degrees * (2*rng.Float64() - 1)
	if a == 0 {
		return false
	}
	Rotate(dst, src, c, h, w, a)
	return true
}

func (t RandomRotate) String() string { return "rotate:" + ftoa(t.Degrees) }

// RandomTranslate moves an image by a whole number of pixels, drawn as
// torchvision's RandomAffine(translate=(Frac, Frac)) draws it: the shift is
// a uniform number in [-Frac*size, Frac*size], rounded, along each axis.
type RandomTranslate struct{ Frac float64 }

// Apply implements Transform.
func (t RandomTranslate) Apply(dst, src []float32, c, h, w int, rng *runtime.RNG) bool {
	mx, my := t.Frac*float64(w), t.Frac*float64(h)
	tx := int(math.RoundToEven(mx * (2*rng.Float64() - 1)))
	ty := int(math.RoundToEven(my * (2*rng.Float64() - 1)))
	if tx == 0 && ty == 0 {
		return false
	}
	Translate(dst, src, c, h, w, ty, tx)
	return true
}

func (t RandomTranslate) String() string { return "translate:" + ftoa(t.Frac) }
