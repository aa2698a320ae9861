package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAccuracy(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name    string
		logits  []float32
		labels  []int32
		classes int
		want    int
	}{
		{"none", nil, nil, 3, 0},
		{"all right", []float32{1, 0, 0, 0, 5, 1}, []int32{0, 1}, 3, 2},
		{"one wrong", []float32{1, 2, 0, 0, 5, 1}, []int32{0, 1}, 3, 1},
		{"tie goes to first", []float32{2, 2, 1}, []int32{1}, 3, 0},
		{"tie goes to first, right", []float32{2, 2, 1}, []int32{0}, 3, 1},
		{"nan never wins", []float32{nan, 1, 0}, []int32{1}, 3, 1},
		{"all nan", []float32{nan, nan}, []int32{0}, 2, 0},
		{"negative logits", []float32{-3, -1, -2}, []int32{1}, 3, 1},
		{"extra logits ignored", []float32{0, 1, 1, 0, 9, 9}, []int32{1, 0}, 2, 2},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Accuracy(tt.logits, tt.labels, tt.classes), tt.name)
	}
}

func TestSoftmax(t *testing.T) {
	logits := []float32{0, 0, 1000, 1001, float32(math.NaN()), 1}
	got := make([]float32, len(logits))
	Softmax(got, logits, 3, 2)
	e := float32(1 / (1 + math.E))
	assert.Equal(t, []float32{0.5, 0.5, e, 1 - e}, got[:4], "rows sum to 1; large logits do not overflow")
	assert.True(t, math.IsNaN(float64(got[4])) && math.IsNaN(float64(got[5])), "a NaN row gives NaNs: %v", got[4:])
	// The probabilities classify as the logits do, where they have no NaN.
	for _, labels := range [][]int32{{0, 1}, {1, 1}, {0, 0}} {
		assert.Equal(t, Accuracy(logits, labels, 2), Accuracy(got, labels, 2), "labels %v", labels)
	}
}
