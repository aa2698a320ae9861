package runtime

import "math"

// Accuracy returns how many of the len(labels) rows of logits (or of
// other scores, such as probabilities), each of classes values, have their
// largest value at the label's index. A tie goes to the lowest index, as
// torch.argmax does; a NaN never wins. logits must hold at least
// len(labels)*classes values.
func Accuracy[F float32 | float64](logits []F, labels []int32, classes int) (correct int) {
	for i, label := range labels {
		row := logits[i*classes : (i+1)*classes]
		best := -1
		for j, v := range row {
			if v == v && (best < 0 || v > row[best]) {
				best = j
			}
		}
		if best >= 0 && int32(best) == label {
			correct++
		}
	}
	return correct
}

// Softmax writes into dst the soft-max of each of the rows rows of
// logits, classes values each, computed in float64 after subtracting the
// row's largest value. A row with a NaN gives NaNs.
func Softmax(dst, logits []float32, rows, classes int) {
	for i := range rows {
		row, out := logits[i*classes:(i+1)*classes], dst[i*classes:(i+1)*classes]
		hi := math.Inf(-1)
		for _, v := range row {
			hi = max(hi, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - hi)
		}
		for j, v := range row {
			out[j] = float32(math.Exp(float64(v)-hi) / sum)
		}
	}
}
