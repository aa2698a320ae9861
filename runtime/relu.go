package runtime

import "math"

// ReLUGrad returns dy where y > 0 and 0 elsewhere: the gradient through a
// ReLU whose output is y. It has no branch: half the outputs of a ReLU are
// zero, in no pattern a branch predictor can learn, and generated backward
// kernels call it per element (it inlines). The mask is all ones exactly
// when y's bits, as an int32, are positive: y > 0, or a positive NaN,
// which a ReLU does not output.
func ReLUGrad(dy, y float32) float32 {
	return math.Float32frombits(math.Float32bits(dy) & uint32(-int64(int32(math.Float32bits(y)))>>63))
}
