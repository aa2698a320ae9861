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
