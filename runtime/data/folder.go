package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode
	_ "image/png"  // registers the PNG decoder
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cnnc/cnnc/runtime"
)

// imageExts are the file extensions LoadImageFolder reads, in lower case.
var imageExts = []string{".png", ".jpg", ".jpeg"}

// LoadImageFolder loads a labelled data set laid out as torchvision's
// ImageFolder expects: one sub-folder of dir per class, whose sorted names
// are the class indices 0, 1, ... and become ClassNames, each holding PNG
// and JPEG images (.png, .jpg, .jpeg, in any case, in nested folders too).
// Other files and names starting with "." are skipped; a class folder with
// no image is an error. Every image is converted to c channels (1: grey,
// 3: RGB; alpha is dropped), resized to h x w with an antialiased bilinear
// filter (PIL's BILINEAR: a triangle filter widened by the scale factor
// when shrinking, plain bilinear when enlarging) and scaled to [0, 1].
// The samples are in class order, then file path order.
//
// The files are read and decoded in parallel on runtime.DefaultPool, one
// file at a time per worker, each read whole into memory; the data set
// takes 4*c*h*w bytes per image, and each worker holds one file and its
// decoded image while it works. An error names the file and why.
func LoadImageFolder(dir string, c, h, w int) (*Dataset, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("load image folder %s: %d channels asked for; images have 1 (grey) or 3 (RGB)", dir, c)
	}
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("load image folder %s: image size %dx%d must be positive", dir, h, w)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load image folder: %w", err)
	}
	var classes []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			classes = append(classes, e.Name())
		}
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("load image folder %s: no class folders; put the images of each class in a folder of their own, such as %s", dir, filepath.Join(dir, "cat", "1.png"))
	}
	slices.Sort(classes)
	var files []string
	var labels []int32
	for k, class := range classes {
		found, err := imageFiles(filepath.Join(dir, class))
		if err != nil {
			return nil, fmt.Errorf("load image folder: %w", err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("load image folder %s: class folder %s has no .png, .jpg or .jpeg files", dir, class)
		}
		files = append(files, found...)
		for range found {
			labels = append(labels, int32(k))
		}
	}
	size := c * h * w
	d := &Dataset{
		Name:       filepath.Base(dir),
		Images:     make([]float32, len(files)*size),
		Labels:     labels,
		N:          len(files),
		C:          c,
		H:          h,
		W:          w,
		Classes:    len(classes),
		ClassNames: classes,
	}
	errs := make([]error, len(files))
	var next atomic.Int64
	pool := runtime.DefaultPool()
	// Each chunk pulls files from a shared counter, so large and small
	// images balance out; every file has its own slot, so the result does
	// not depend on which worker read it.
	pool.For(pool.Workers(), func(lo, hi int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(files) {
				return
			}
			if err := loadImage(files[i], d.Images[i*size:(i+1)*size], c, h, w); err != nil {
				errs[i] = fmt.Errorf("load image folder: %s: %w", files[i], err)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// imageFiles returns the image files under dir, in lexical path order,
// skipping names that start with ".".
func imageFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() && slices.Contains(imageExts, strings.ToLower(filepath.Ext(path))) {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

// loadImage reads and decodes the image at path and writes it into dst as
// c planes of h x w values in [0, 1].
func loadImage(path string, dst []float32, c, h, w int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return err
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	r := img.Bounds()
	if r.Empty() {
		return fmt.Errorf("decode %s: the image is empty", format)
	}
	sh, sw := r.Dy(), r.Dx()
	if sh == h && sw == w {
		toPlanes(dst, img, c)
		return nil
	}
	src := make([]float32, c*sh*sw)
	toPlanes(src, img, c)
	resize(dst, h, w, src, c, sh, sw)
	return nil
}

// toPlanes writes img as c planes (grey, or red, green and blue) of values
// in [0, 1] into dst. Colour becomes grey as PIL's convert("L") does it,
// 0.299 R + 0.587 G + 0.114 B; grey becomes colour by repetition; alpha is
// ignored.
func toPlanes(dst []float32, img image.Image, c int) {
	r := img.Bounds()
	h, w := r.Dy(), r.Dx()
	hw := h * w
	set := func(i int, red, green, blue float32) {
		if c == 1 {
			dst[i] = 0.299*red + 0.587*green + 0.114*blue
			return
		}
		dst[i], dst[hw+i], dst[2*hw+i] = red, green, blue
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, p := range row {
				v := float32(p) / 255
				for k := range c {
					dst[k*hw+y*w+x] = v
				}
			}
		}
	case *image.NRGBA: // straight colour: the alpha channel is dropped
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				set(y*w+x, float32(row[4*x])/255, float32(row[4*x+1])/255, float32(row[4*x+2])/255)
			}
		}
	case *image.RGBA: // premultiplied, and opaque as image/png decodes it
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				red, green, blue, a := float32(row[4*x]), float32(row[4*x+1]), float32(row[4*x+2]), float32(row[4*x+3])
				if a != 255 && a != 0 {
					red, green, blue = red*255/a, green*255/a, blue*255/a
				}
				set(y*w+x, red/255, green/255, blue/255)
			}
		}
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi, ci := m.YOffset(r.Min.X+x, r.Min.Y+y), m.COffset(r.Min.X+x, r.Min.Y+y)
				red, green, blue := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				set(y*w+x, float32(red)/255, float32(green)/255, float32(blue)/255)
			}
		}
	default:
		for y := range h {
			for x := range w {
				p := color.NRGBA64Model.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA64)
				set(y*w+x, float32(p.R)/65535, float32(p.G)/65535, float32(p.B)/65535)
			}
		}
	}
}

// resize writes src, c planes of sh x sw, resized to c planes of h x w into
// dst, with PIL's antialiased bilinear filter: separable, rows first, each
// output pixel a normalised triangle-weighted sum of the input pixels
// within max(scale, 1) of its centre, where scale is input over output
// size. When enlarging it is bilinear interpolation with
// align_corners=False and clamped edges.
func resize(dst []float32, h, w int, src []float32, c, sh, sw int) {
	xlo, xw, xn := resizeWeights(sw, w)
	ylo, yw, yn := resizeWeights(sh, h)
	tmp := make([]float32, sh*w) // one plane resized along x
	for k := range c {
		plane := src[k*sh*sw : (k+1)*sh*sw]
		for y := range sh {
			row := plane[y*sw : (y+1)*sw]
			for x := range w {
				var s float32
				for j, wt := range xw[x*xn : (x+1)*xn] {
					if wt != 0 {
						s += wt * row[xlo[x]+j]
					}
				}
				tmp[y*w+x] = s
			}
		}
		out := dst[k*h*w : (k+1)*h*w]
		for y := range h {
			o := out[y*w : (y+1)*w]
			clear(o)
			for j, wt := range yw[y*yn : (y+1)*yn] {
				if wt == 0 {
					continue
				}
				in := tmp[(ylo[y]+j)*w : (ylo[y]+j+1)*w]
				for x := range o {
					o[x] += wt * in[x]
				}
			}
		}
	}
}

// resizeWeights returns, for each of out output pixels along an axis of in
// input pixels, the first input index and n normalised weights (zero past
// the window), as PIL's precompute_coeffs computes them for the bilinear
// filter.
func resizeWeights(in, out int) (lo []int, weights []float32, n int) {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := filterScale // the triangle filter has support 1
	n = int(math.Ceil(support))*2 + 1
	lo = make([]int, out)
	weights = make([]float32, out*n)
	ws := make([]float64, n)
	for i := range out {
		center := (float64(i) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in)
		lo[i] = xmin
		total := 0.0
		for j := range n {
			ws[j] = 0
			if xmin+j < xmax {
				t := math.Abs((float64(xmin+j) - center + 0.5) / filterScale)
				ws[j] = max(1-t, 0)
			}
			total += ws[j]
		}
		for j := range n {
			if total > 0 {
				weights[i*n+j] = float32(ws[j] / total)
			}
		}
	}
	return lo, weights, n
}
