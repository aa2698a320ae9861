package data

import (
	"fmt"
	"math"
	"slices"

	"github.com/cnnc/cnnc/runtime"
)

// The names of the tensors that hold a Preprocess in a checkpoint.
const (
	PreprocessMeanName = "cnnc.preprocess.mean"
	PreprocessStdName  = "cnnc.preprocess.std"
)

// A Preprocess is the input normalisation a model is trained with,
// computed once on the training set and applied to every batch, training,
// validation and test alike: x = (x - Mean) / Std. With PerChannel, Mean
// and Std hold one value per channel, as torchvision's Normalize takes
// them; without, one per pixel of a C x H x W image (Mean is then the
// training set's mean image). Std is nil when inputs are only centred.
// C, H and W are the image shape.
type Preprocess struct {
	Mean       []float32
	Std        []float32
	PerChannel bool
	C, H, W    int
}

// ComputePreprocess returns the mean, and with divideStd the standard
// deviation, of ds's images, per channel (over all images and pixels) or per
// pixel (over all images), accumulated in float64 in two passes. The
// standard deviation is the population one (divided by the count, as
// numpy's std is); where it is 0, as for a pixel that is black in every
// image, it is taken as 1, so that pixel is centred and not divided by
// zero.
func ComputePreprocess(ds *Dataset, perChannel, divideStd bool) Preprocess {
	p := Preprocess{PerChannel: perChannel, C: ds.C, H: ds.H, W: ds.W}
	hw := ds.H * ds.W
	groups, per := ds.ImageSize(), 1 // values of Mean, image values per value
	if perChannel {
		groups, per = ds.C, hw
	}
	count := float64(ds.N) * float64(per)
	// accumulate adds f(value, group) over every image value to sum.
	sum := make([]float64, groups)
	accumulate := func(f func(v float32, g int) float64) {
		for i := range ds.N {
			img := ds.Image(i)
			for g := range groups {
				s := 0.0
				for _, v := range img[g*per : (g+1)*per] {
					s += f(v, g)
				}
				sum[g] += s
			}
		}
	}
	if perChannel {
		accumulate(func(v float32, g int) float64 { return float64(v) })
	} else {
		// One value per group: skip the closure on the hot path.
		for i := range ds.N {
			for j, v := range ds.Image(i) {
				sum[j] += float64(v)
			}
		}
	}
	mean := make([]float64, groups)
	p.Mean = make([]float32, groups)
	if count > 0 {
		for g := range sum {
			mean[g] = sum[g] / count
			p.Mean[g] = float32(mean[g])
		}
	}
	if !divideStd {
		return p
	}
	clear(sum)
	accumulate(func(v float32, g int) float64 {
		d := float64(v) - mean[g]
		return d * d
	})
	p.Std = make([]float32, groups)
	for g := range sum {
		s := 0.0
		if count > 0 {
			s = math.Sqrt(sum[g] / count)
		}
		if float32(s) == 0 {
			s = 1
		}
		p.Std[g] = float32(s)
	}
	return p
}

// ImageSize returns C*H*W.
func (p Preprocess) ImageSize() int {
	return p.C * p.H * p.W
}

// Apply normalises the first n images of x in place. It panics if x holds
// fewer than n images or p's vectors do not fit its shape, bugs in the
// caller.
func (p Preprocess) Apply(x []float32, n int) {
	size := p.ImageSize()
	if len(x) < n*size {
		panic(fmt.Sprintf("data: Preprocess.Apply: x holds %d values, want %d images of %dx%dx%d", len(x), n, p.C, p.H, p.W))
	}
	want := size
	if p.PerChannel {
		want = p.C
	}
	if len(p.Mean) != want || (p.Std != nil && len(p.Std) != want) {
		panic(fmt.Sprintf("data: Preprocess.Apply: mean of %d and std of %d values for %d", len(p.Mean), len(p.Std), want))
	}
	hw := p.H * p.W
	for i := range n {
		img := x[i*size : (i+1)*size]
		if p.PerChannel {
			for k := range p.C {
				plane := img[k*hw : (k+1)*hw]
				m := p.Mean[k]
				if p.Std == nil {
					for j := range plane {
						plane[j] -= m
					}
					continue
				}
				s := p.Std[k]
				for j := range plane {
					plane[j] = (plane[j] - m) / s
				}
			}
			continue
		}
		if p.Std == nil {
			for j := range img {
				img[j] -= p.Mean[j]
			}
			continue
		}
		for j := range img {
			img[j] = (img[j] - p.Mean[j]) / p.Std[j]
		}
	}
}

// ApplyDataset normalises every image of ds in place.
func (p Preprocess) ApplyDataset(ds *Dataset) {
	p.Apply(ds.Images, ds.N)
}

// shape returns the shape of p's tensors in a checkpoint: [C, 1, 1] per
// channel, so it broadcasts over an image as PyTorch's does, or [C, H, W].
func (p Preprocess) shape() []int {
	if p.PerChannel {
		return []int{p.C, 1, 1}
	}
	return []int{p.C, p.H, p.W}
}

// Params returns p as buffers to save in a checkpoint:
// "cnnc.preprocess.mean" and, if p divides, "cnnc.preprocess.std", each of
// shape [C, 1, 1] per channel or [C, H, W] per pixel. The Data are copies.
func (p Preprocess) Params() []*runtime.Param {
	params := []*runtime.Param{{Name: PreprocessMeanName, Shape: p.shape(), Data: slices.Clone(p.Mean)}}
	if p.Std != nil {
		params = append(params, &runtime.Param{Name: PreprocessStdName, Shape: p.shape(), Data: slices.Clone(p.Std)})
	}
	return params
}

// PreprocessFromParams finds the tensors Params writes among params and
// rebuilds the Preprocess for images of c x h x w. It returns ok false, and
// no error, if there is no mean tensor. A tensor of shape [C, 1, 1] (or
// [C]) is per channel, one of [C, H, W] per pixel; any other shape, a
// standard deviation without a mean, one of a different shape from the
// mean's or one that is not positive is an error.
func PreprocessFromParams(params []*runtime.Param, c, h, w int) (p Preprocess, ok bool, err error) {
	var mean, std *runtime.Param
	for _, q := range params {
		switch q.Name {
		case PreprocessMeanName:
			mean = q
		case PreprocessStdName:
			std = q
		}
	}
	return preprocessFrom(mean, std, c, h, w)
}

// PreprocessFromTensors is PreprocessFromParams for the tensors
// runtime.LoadTensors reads.
func PreprocessFromTensors(tensors map[string]runtime.Tensor, c, h, w int) (p Preprocess, ok bool, err error) {
	var mean, std *runtime.Param
	if t, ok := tensors[PreprocessMeanName]; ok {
		mean = &runtime.Param{Name: PreprocessMeanName, Shape: t.Shape, Data: t.F32}
	}
	if t, ok := tensors[PreprocessStdName]; ok {
		std = &runtime.Param{Name: PreprocessStdName, Shape: t.Shape, Data: t.F32}
	}
	return preprocessFrom(mean, std, c, h, w)
}

func preprocessFrom(mean, std *runtime.Param, c, h, w int) (Preprocess, bool, error) {
	if mean == nil {
		if std != nil {
			return Preprocess{}, false, fmt.Errorf("preprocessing: checkpoint has %s but no %s", PreprocessStdName, PreprocessMeanName)
		}
		return Preprocess{}, false, nil
	}
	p := Preprocess{C: c, H: h, W: w}
	switch {
	case slices.Equal(mean.Shape, []int{c, 1, 1}) || slices.Equal(mean.Shape, []int{c}):
		p.PerChannel = true
	case slices.Equal(mean.Shape, []int{c, h, w}):
	default:
		return Preprocess{}, false, fmt.Errorf("preprocessing: %s has shape %v, want [%d 1 1] (per channel) or [%d %d %d] (per pixel) for the model's %dx%dx%d input", PreprocessMeanName, mean.Shape, c, c, h, w, c, h, w)
	}
	want := p.ImageSize()
	if p.PerChannel {
		want = c
	}
	if len(mean.Data) != want {
		return Preprocess{}, false, fmt.Errorf("preprocessing: %s of shape %v holds %d values", PreprocessMeanName, mean.Shape, len(mean.Data))
	}
	p.Mean = slices.Clone(mean.Data)
	if std != nil {
		if !slices.Equal(std.Shape, mean.Shape) || len(std.Data) != want {
			return Preprocess{}, false, fmt.Errorf("preprocessing: %s has shape %v but %s has %v; they must match", PreprocessStdName, std.Shape, PreprocessMeanName, mean.Shape)
		}
		for i, s := range std.Data {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				return Preprocess{}, false, fmt.Errorf("preprocessing: %s value %d is %v, want a positive number", PreprocessStdName, i, s)
			}
		}
		p.Std = slices.Clone(std.Data)
	}
	return p, true, nil
}
