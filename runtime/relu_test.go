package runtime

import (
	"math"
	"testing"
)

func TestReLUGrad(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	for _, tc := range []struct{ dy, y, want float32 }{
		{2, 1, 2}, {-3, 0.5, -3}, {2, 0, 0}, {2, negZero, 0}, {2, -1, 0},
		{2, math.SmallestNonzeroFloat32, 2}, {2, math.MaxFloat32, 2}, {2, float32(math.Inf(1)), 2},
		{2, float32(math.Inf(-1)), 0}, {float32(math.Inf(-1)), 1, float32(math.Inf(-1))},
	} {
		if got := ReLUGrad(tc.dy, tc.y); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("ReLUGrad(%v, %v) = %v, want %v", tc.dy, tc.y, got, tc.want)
		}
	}
}
