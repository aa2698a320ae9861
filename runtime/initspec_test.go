package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseInit(t *testing.T) {
	tests := []struct {
		spec string
		want Init
	}{
		{"zeros", Init{Scheme: "zeros"}},
		{"ones", Init{Scheme: "ones"}},
		{"const:0", Init{Scheme: "const"}},
		{"constant:0.5", Init{Scheme: "const", Value: 0.5}},
		{"normal:0.01", Init{Scheme: "normal", Value: 0.01}},
		{"uniform:0.1", Init{Scheme: "uniform", Value: 0.1}},
		{"xavier_uniform", Init{Scheme: "xavier_uniform"}},
		{"glorot_normal:2", Init{Scheme: "xavier_normal", Value: 2}},
		{"he_normal", Init{Scheme: "kaiming_normal"}},
		{"He_Uniform", Init{Scheme: "kaiming_uniform"}},
		{"kaiming_uniform:fan_out", Init{Scheme: "kaiming_uniform", Mode: "fan_out"}},
		{"kaiming_normal:fan_in", Init{Scheme: "kaiming_normal", Mode: "fan_in"}},
		{" torch_default ", Init{Scheme: "torch_default"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			in, err := ParseInit(tt.spec)
			require.NoError(t, err)
			assert.Equal(t, tt.want, in)
			again, err := ParseInit(in.Spec())
			require.NoError(t, err, "Spec() = %q", in.Spec())
			assert.Equal(t, in, again, "round trip through Spec() = %q", in.Spec())
		})
	}
}

func TestParseInitErrors(t *testing.T) {
	tests := []struct{ spec, err string }{
		{"", `init "": empty scheme (examples: he_normal, xavier_uniform`},
		{"gaussian", `unknown scheme "gaussian"; known schemes are zeros, ones`},
		{"normal", "normal needs a standard deviation, as in normal:0.01"},
		{"const", "const needs a value, as in const:0.01"},
		{"normal:-1", "init normal: scale -1 must be a finite number >= 0"},
		{"uniform:x", `uniform bound "x" is not a number`},
		{"zeros:1", "zeros takes no argument"},
		{"xavier_normal:0", "xavier_normal gain 0 must be > 0"},
		{"he_normal:fan_avg", `kaiming_normal: unknown mode "fan_avg", want fan_in or fan_out`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseInit(tt.spec)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestFans(t *testing.T) {
	tests := []struct {
		shape         []int
		fanIn, fanOut int
	}{
		{[]int{16, 8, 3, 3}, 72, 144},
		{[]int{10, 84}, 84, 10},
		{[]int{6, 1, 5, 5}, 25, 150},
		{[]int{6}, 0, 0},
		{nil, 0, 0},
	}
	for _, tt := range tests {
		in, out := Fans(tt.shape)
		assert.Equal(t, []int{tt.fanIn, tt.fanOut}, []int{in, out}, "Fans(%v)", tt.shape)
	}
}

// TestParseInitFill fills a conv weight [16, 8, 3, 3] (fan in 72, fan out
// 144) through the flag's path, ParseInit, Fans, WithFans and Fill, and
// compares the sample mean and standard deviation with torch.nn.init's
// formulas written out by hand. TestInitFillStatistics covers the Init
// structs directly.
func TestParseInitFill(t *testing.T) {
	tests := []struct {
		spec      string
		mean, std float64
	}{
		{"const:0", 0, 0},
		{"const:-0.5", -0.5, 0},
		{"ones", 1, 0},
		{"normal:0.01", 0, 0.01},
		{"uniform:0.3", 0, 0.3 / math.Sqrt(3)},
		{"xavier_normal", 0, math.Sqrt(2.0 / 216)},
		{"xavier_uniform", 0, math.Sqrt(6.0/216) / math.Sqrt(3)},
		{"xavier_uniform:3", 0, 3 * math.Sqrt(6.0/216) / math.Sqrt(3)},
		{"he_normal", 0, math.Sqrt(2.0 / 72)},
		{"he_normal:fan_out", 0, math.Sqrt(2.0 / 144)},
		{"kaiming_uniform", 0, math.Sqrt(6.0/72) / math.Sqrt(3)},
		{"kaiming_uniform:fan_out", 0, math.Sqrt(6.0/144) / math.Sqrt(3)},
		{"torch_default", 0, 1 / math.Sqrt(72) / math.Sqrt(3)},
	}
	shape := []int{16, 8, 3, 3}
	const copies = 40 // 40 weights of 1152 values: enough samples for 3%
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			in, err := ParseInit(tt.spec)
			require.NoError(t, err)
			in = in.WithFans(Fans(shape))
			require.NoError(t, in.Validate())
			data := make([]float32, copies*shapeSize(shape))
			in.Fill(data, NewRNG(7))
			n := float64(len(data))
			sum, sum2 := 0.0, 0.0
			for _, v := range data {
				sum += float64(v)
				sum2 += float64(v) * float64(v)
			}
			mean := sum / n
			variance := sum2/n - mean*mean
			assert.InDelta(t, tt.mean, mean, 5*tt.std/math.Sqrt(n)+1e-7, "mean")
			assert.InDelta(t, tt.std*tt.std, variance, 0.06*tt.std*tt.std+1e-9, "variance")
		})
	}
}
