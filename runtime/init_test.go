package runtime

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInitFillStatistics(t *testing.T) {
	tests := []struct {
		init      Init
		mean, std float64
	}{
		{Init{Scheme: "zeros"}, 0, 0},
		{Init{Scheme: "ones"}, 1, 0},
		{Init{Scheme: "const", Value: 0.25}, 0.25, 0},
		{Init{Scheme: "normal", Value: 0.01}, 0, 0.01},
		{Init{Scheme: "uniform", Value: 0.5}, 0, 0.5 / math.Sqrt(3)},
		{Init{Scheme: "xavier_normal", FanIn: 100, FanOut: 50}, 0, math.Sqrt(2.0 / 150)},
		{Init{Scheme: "xavier_normal", Value: 2, FanIn: 100, FanOut: 50}, 0, 2 * math.Sqrt(2.0/150)},
		{Init{Scheme: "xavier_uniform", FanIn: 100, FanOut: 50}, 0, math.Sqrt(6.0/150) / math.Sqrt(3)},
		{Init{Scheme: "kaiming_normal", FanIn: 75, FanOut: 150}, 0, math.Sqrt(2.0 / 75)},
		{Init{Scheme: "kaiming_normal", FanIn: 75, FanOut: 150, Mode: "fan_out"}, 0, math.Sqrt(2.0 / 150)},
		{Init{Scheme: "kaiming_uniform", FanIn: 75, Mode: "fan_in"}, 0, math.Sqrt(6.0/75) / math.Sqrt(3)},
		{Init{Scheme: "torch_default", FanIn: 25}, 0, (1.0 / 5) / math.Sqrt(3)},
	}
	const n = 100000
	for _, tt := range tests {
		name := tt.init.Scheme + "/" + tt.init.Mode
		t.Run(name, func(t *testing.T) {
			require.NoError(t, tt.init.Validate())
			data := make([]float32, n)
			tt.init.Fill(data, NewRNG(1))
			sum, sum2 := 0.0, 0.0
			for _, v := range data {
				sum += float64(v)
				sum2 += float64(v) * float64(v)
			}
			mean := sum / n
			std := math.Sqrt(sum2/n - mean*mean)
			// Five standard errors of the mean; 3% of the standard deviation.
			assert.InDelta(t, tt.mean, mean, 5*tt.std/math.Sqrt(n)+1e-7, "mean")
			assert.InDelta(t, tt.std, std, 0.03*tt.std+1e-7, "standard deviation")
			if tt.std > 0 {
				assert.InDelta(t, tt.std, tt.init.Std(), 1e-12, "Std()")
			}
		})
	}
}

func TestInitUniformBounds(t *testing.T) {
	tests := []struct {
		init  Init
		bound float64
	}{
		{Init{Scheme: "uniform", Value: 0.5}, 0.5},
		{Init{Scheme: "xavier_uniform", FanIn: 10, FanOut: 20}, math.Sqrt(6.0 / 30)},
		{Init{Scheme: "kaiming_uniform", FanIn: 10}, math.Sqrt(6.0 / 10)},
		{Init{Scheme: "torch_default", FanIn: 16}, 0.25},
	}
	for _, tt := range tests {
		data := make([]float32, 10000)
		tt.init.Fill(data, NewRNG(2))
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range data {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		assert.True(t, lo >= -tt.bound && hi <= tt.bound, "%s: values in [%v, %v], bound %v", tt.init.Scheme, lo, hi, tt.bound)
		assert.Greater(t, hi, 0.99*tt.bound, "%s: no value near the bound", tt.init.Scheme)
	}
}

func TestInitDeterministic(t *testing.T) {
	in := Init{Scheme: "kaiming_normal", FanIn: 9}
	a, b := make([]float32, 100), make([]float32, 100)
	in.Fill(a, NewRNG(5))
	in.Fill(b, NewRNG(5))
	assert.Equal(t, a, b)
}

func TestInitValidate(t *testing.T) {
	tests := []struct {
		init Init
		err  string // empty: valid
	}{
		{Init{Scheme: "zeros"}, ""},
		{Init{Scheme: "normal", Value: 0.1}, ""},
		{Init{Scheme: "gaussian"}, `unknown init scheme "gaussian"; known schemes are zeros, ones, const, normal, uniform, xavier_normal, xavier_uniform, kaiming_normal, kaiming_uniform, torch_default`},
		{Init{Scheme: ""}, `unknown init scheme ""`},
		{Init{Scheme: "normal", Value: -1}, "init normal: scale -1 must be a finite number >= 0"},
		{Init{Scheme: "xavier_uniform"}, "init xavier_uniform: needs FanIn + FanOut > 0, have FanIn 0 and FanOut 0"},
		{Init{Scheme: "kaiming_normal", FanIn: 3, Mode: "fan_avg"}, `init kaiming_normal: unknown mode "fan_avg"`},
		{Init{Scheme: "kaiming_uniform", FanIn: 3, Mode: "fan_out"}, "init kaiming_uniform: needs a positive FanOut, have 0"},
		{Init{Scheme: "torch_default"}, "init torch_default: needs a positive FanIn, have 0"},
	}
	for _, tt := range tests {
		err := tt.init.Validate()
		if tt.err == "" {
			assert.NoError(t, err, "%+v", tt.init)
			continue
		}
		require.Error(t, err, "%+v", tt.init)
		assert.Contains(t, err.Error(), tt.err)
	}
	assert.Panics(t, func() { Init{Scheme: "bogus"}.Fill(make([]float32, 1), NewRNG(0)) })
}

func TestNewParam(t *testing.T) {
	p := NewParam("conv1.weight", []int{6, 1, 5, 5}, true)
	assert.Equal(t, 150, p.Size())
	assert.Len(t, p.Data, 150)
	assert.Len(t, p.Grad, 150)
	b := NewParam("bn1.running_mean", []int{6}, false)
	assert.Nil(t, b.Grad)
	assert.Equal(t, 6, b.Size())
	scalar := NewParam("s", nil, false)
	assert.Equal(t, 1, scalar.Size())
}

// TestPanels checks the column-panel layout of a matrix parameter: where
// PanelIndex puts each element, that ToPanels and FromPanels invert each
// other, and that Logical, SetLogical, UsePanels and FillParam keep the
// row-major order at the parameter's surface.
func TestPanels(t *testing.T) {
	for _, shape := range [][2]int{{1, 1}, {3, 16}, {5, 17}, {7, 40}, {500, 500}, {2, 784}} {
		rows, cols := shape[0], shape[1]
		logical := make([]float32, rows*cols)
		for i := range logical {
			logical[i] = float32(i)
		}
		panels := make([]float32, len(logical))
		ToPanels(panels, logical, rows, cols)
		seen := make([]bool, len(panels))
		for r := range rows {
			for c := range cols {
				at := PanelIndex(rows, cols, r, c)
				if seen[at] {
					t.Fatalf("%v: (%d, %d) at %d, taken", shape, r, c, at)
				}
				seen[at] = true
				if panels[at] != logical[r*cols+c] {
					t.Fatalf("%v: ToPanels put %v at %d, want element (%d, %d) = %v", shape, panels[at], at, r, c, logical[r*cols+c])
				}
			}
		}
		if c := min(cols, PanelWidth); rows > 1 && PanelIndex(rows, cols, 1, 0) != c {
			t.Errorf("%v: row 1 of the first panel at %d, want %d", shape, PanelIndex(rows, cols, 1, 0), c)
		}
		back := make([]float32, len(panels))
		FromPanels(back, panels, rows, cols)
		if !slices.Equal(back, logical) {
			t.Fatalf("%v: FromPanels(ToPanels(x)) != x", shape)
		}

		p := NewParam("w", []int{rows, cols}, true)
		copy(p.Data, logical)
		copy(p.Grad, logical)
		p.UsePanels()
		if !p.Panels || !slices.Equal(p.Data, panels) || !slices.Equal(p.Grad, panels) {
			t.Fatalf("%v: UsePanels did not store Data and Grad as column panels", shape)
		}
		if got := p.Logical(p.Data); !slices.Equal(got, logical) {
			t.Fatalf("%v: Logical(Data) is not the row-major matrix", shape)
		}
		clear(p.Data)
		p.SetLogical(p.Data, logical)
		if !slices.Equal(p.Data, panels) {
			t.Fatalf("%v: SetLogical did not store the matrix as column panels", shape)
		}

		in := Init{Scheme: "xavier_uniform", FanIn: cols, FanOut: rows}
		want := make([]float32, rows*cols)
		in.Fill(want, NewRNG(3))
		in.FillParam(p, NewRNG(3))
		if !slices.Equal(p.Logical(p.Data), want) {
			t.Fatalf("%v: FillParam on column panels drew other values than Fill", shape)
		}
	}
}
