package runtime

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPenaltyGrads(t *testing.T) {
	w := NewParam("fc.weight", []int{2, 2}, true)
	copy(w.Data, []float32{0.5, -0.25, 0, 2})
	copy(w.Grad, []float32{1, 1, 1, 1})
	AddL1Grad([]*Param{w}, 0.1)
	require.InDeltaSlice(t, []float64{1.1, 0.9, 1, 1.1}, f64(w.Grad), 1e-7)

	copy(w.Grad, []float32{0, 0, 0, 0})
	AddElasticNetGrad([]*Param{w}, 0.1, 0.5) // 0.1*(w + sign w)
	require.InDeltaSlice(t, []float64{0.15, -0.125, 0, 0.3}, f64(w.Grad), 1e-7)

	// By ranges, as a range hook adds them: elements [1, 3) alone.
	copy(w.Grad, []float32{0, 0, 0, 0})
	AddElasticNetGradRange(w, 0.1, 0.5, 1, 3)
	require.InDeltaSlice(t, []float64{0, -0.125, 0, 0}, f64(w.Grad), 1e-7)
	AddElasticNetGradRange(w, 0.1, 0.5, 3, 4)
	AddElasticNetGradRange(w, 0.1, 0.5, 0, 1)
	require.InDeltaSlice(t, []float64{0.15, -0.125, 0, 0.3}, f64(w.Grad), 1e-7)

	buf := NewParam("bn.running_mean", []int{2, 2}, false)
	AddElasticNetGrad([]*Param{buf}, 1, 1) // skipped: no Grad

	b := NewParam("fc.bias", []int{2}, true)
	g := NewParam("bn1.weight", []int{2}, true)
	require.Equal(t, []*Param{w}, Weights([]*Param{w, b, g, buf}))
	require.False(t, IsWeight(NewParam("conv.weight", []int{3, 3}, false)), "a buffer")
}

func f64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}
