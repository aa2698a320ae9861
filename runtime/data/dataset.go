package data

import "fmt"

// A Dataset is a labelled image data set held in memory. Images holds N
// images of C x H x W float32 values each, in NCHW order; Labels holds N
// class indices in [0, Classes). ClassNames, when known, names each class
// index; it is nil for data sets without names, such as MNIST's IDX files.
type Dataset struct {
	Name       string
	Images     []float32
	Labels     []int32
	N, C, H, W int
	Classes    int
	ClassNames []string
}

// ImageSize returns the number of values in one image, C*H*W.
func (d *Dataset) ImageSize() int {
	return d.C * d.H * d.W
}

// Image returns image i, a slice of Images of ImageSize values.
func (d *Dataset) Image(i int) []float32 {
	s := d.ImageSize()
	return d.Images[i*s : (i+1)*s : (i+1)*s]
}

// MeanImage returns the mean of the images, pixel by pixel, accumulated in
// float64.
func (d *Dataset) MeanImage() []float32 {
	s := d.ImageSize()
	sum := make([]float64, s)
	for i := range d.N {
		for j, v := range d.Image(i) {
			sum[j] += float64(v)
		}
	}
	mean := make([]float32, s)
	if d.N == 0 {
		return mean
	}
	for j, v := range sum {
		mean[j] = float32(v / float64(d.N))
	}
	return mean
}

// Subtract subtracts mean, an image of ImageSize values such as the training
// set's MeanImage, from every image. It panics if mean has the wrong size,
// which is a bug in the caller.
func (d *Dataset) Subtract(mean []float32) {
	s := d.ImageSize()
	if len(mean) != s {
		panic(fmt.Sprintf("data: Subtract: mean image has %d values, want %d (%dx%dx%d)", len(mean), s, d.C, d.H, d.W))
	}
	for i := range d.N {
		img := d.Image(i)
		for j := range img {
			img[j] -= mean[j]
		}
	}
}
