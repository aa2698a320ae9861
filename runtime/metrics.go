package runtime

// Accuracy returns how many of the len(labels) rows of logits, each of
// classes values, have their largest value at the label's index. A tie goes
// to the lowest index, as torch.argmax does; a NaN never wins. logits must
// hold at least len(labels)*classes values.
func Accuracy(logits []float32, labels []int32, classes int) (correct int) {
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
