package data

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/cnnc/cnnc/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoByTwo returns 3 images of 2 channels of 1x2 pixels.
func twoByTwo() *Dataset {
	return &Dataset{Name: "t", N: 3, C: 2, H: 1, W: 2, Classes: 1, Labels: make([]int32, 3), Images: []float32{
		1, 2, 10, 10,
		3, 4, 10, 10,
		5, 6, 10, 10,
	}}
}

func TestComputePreprocess(t *testing.T) {
	d := twoByTwo()
	tests := []struct {
		name                  string
		perChannel, divideStd bool
		mean, std             []float32
	}{
		// Channel 0 holds 1..6: mean 3.5, population std sqrt(35/12);
		// channel 1 is constant, so its std is taken as 1.
		{"channel", true, true, []float32{3.5, 10}, []float32{float32(math.Sqrt(35.0 / 12)), 1}},
		{"channel mean", true, false, []float32{3.5, 10}, nil},
		// Pixel by pixel: (1,3,5) and (2,4,6) have std sqrt(8/3).
		{"pixel", false, true, []float32{3, 4, 10, 10}, []float32{float32(math.Sqrt(8.0 / 3)), float32(math.Sqrt(8.0 / 3)), 1, 1}},
		{"pixel mean", false, false, []float32{3, 4, 10, 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ComputePreprocess(d, tt.perChannel, tt.divideStd)
			assert.Equal(t, tt.perChannel, p.PerChannel)
			assert.Equal(t, []int{2, 1, 2}, []int{p.C, p.H, p.W})
			assert.InDeltaSlice(t, tt.mean, p.Mean, 1e-6)
			if tt.std == nil {
				assert.Nil(t, p.Std)
			} else {
				assert.InDeltaSlice(t, tt.std, p.Std, 1e-6)
			}
			// Normalised, the training set has mean 0 and, where it
			// varies, standard deviation 1.
			x := append([]float32(nil), d.Images...)
			p.Apply(x, d.N)
			after := ComputePreprocess(&Dataset{N: 3, C: 2, H: 1, W: 2, Images: x}, tt.perChannel, true)
			for i, m := range after.Mean {
				assert.InDelta(t, 0, m, 1e-6, "mean %d after", i)
			}
			if tt.std != nil {
				assert.InDelta(t, 1, after.Std[0], 1e-6)
			}
		})
	}
	assert.Equal(t, d.MeanImage(), ComputePreprocess(d, false, false).Mean, "per pixel, the mean is MeanImage")
}

func TestPreprocessApply(t *testing.T) {
	p := Preprocess{Mean: []float32{1, 2}, Std: []float32{2, 4}, PerChannel: true, C: 2, H: 1, W: 2}
	x := []float32{3, 5, 6, 10, 9, 9, 9, 9} // two images; only the first is applied
	p.Apply(x, 1)
	assert.Equal(t, []float32{1, 2, 1, 2, 9, 9, 9, 9}, x)
	assert.Panics(t, func() { p.Apply(make([]float32, 7), 2) })
	assert.Panics(t, func() { Preprocess{Mean: []float32{1}, C: 2, H: 1, W: 2}.Apply(make([]float32, 4), 1) })
}

func TestPreprocessParams(t *testing.T) {
	d := twoByTwo()
	for _, p := range []Preprocess{
		ComputePreprocess(d, true, true),
		ComputePreprocess(d, true, false),
		ComputePreprocess(d, false, true),
		ComputePreprocess(d, false, false),
	} {
		params := p.Params()
		require.NotEmpty(t, params)
		assert.Equal(t, PreprocessMeanName, params[0].Name)
		if p.PerChannel {
			assert.Equal(t, []int{2, 1, 1}, params[0].Shape)
		} else {
			assert.Equal(t, []int{2, 1, 2}, params[0].Shape)
		}
		got, ok, err := PreprocessFromParams(params, 2, 1, 2)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, p, got)
		// Through a safetensors file, as a checkpoint carries it.
		path := filepath.Join(t.TempDir(), "ckpt.safetensors")
		require.NoError(t, runtime.SaveTensors(path, params, nil))
		tensors, _, err := runtime.LoadTensors(path)
		require.NoError(t, err)
		got, ok, err = PreprocessFromTensors(tensors, 2, 1, 2)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, p, got)
	}
	_, ok, err := PreprocessFromParams(nil, 2, 1, 2)
	assert.False(t, ok)
	assert.NoError(t, err)
}

func TestPreprocessFromParamsErrors(t *testing.T) {
	mean := func(shape ...int) *runtime.Param {
		return runtime.NewParam(PreprocessMeanName, shape, false)
	}
	std := func(v float32, shape ...int) *runtime.Param {
		p := runtime.NewParam(PreprocessStdName, shape, false)
		for i := range p.Data {
			p.Data[i] = v
		}
		return p
	}
	tests := []struct {
		name   string
		params []*runtime.Param
		err    string
	}{
		{"shape", []*runtime.Param{mean(3, 1, 1)}, "cnnc.preprocess.mean has shape [3 1 1], want [2 1 1] (per channel) or [2 1 2] (per pixel) for the model's 2x1x2 input"},
		{"std alone", []*runtime.Param{std(1, 2, 1, 1)}, "checkpoint has cnnc.preprocess.std but no cnnc.preprocess.mean"},
		{"std shape", []*runtime.Param{mean(2, 1, 1), std(1, 2, 1, 2)}, "cnnc.preprocess.std has shape [2 1 2] but cnnc.preprocess.mean has [2 1 1]"},
		{"std zero", []*runtime.Param{mean(2, 1, 1), std(0, 2, 1, 1)}, "cnnc.preprocess.std value 0 is 0, want a positive number"},
		{"short", []*runtime.Param{{Name: PreprocessMeanName, Shape: []int{2, 1, 2}, Data: []float32{1}}}, "holds 1 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := PreprocessFromParams(tt.params, 2, 1, 2)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}
