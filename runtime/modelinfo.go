package runtime

// A ModelInfo describes a compiled model to the code that drives it, such
// as the trainer: its name, the largest batch one call may pass, the shape
// of one input sample without the batch (channels, height, width, or
// features) and the number of classes, the length of a row of logits.
type ModelInfo struct {
	Name       string
	Batch      int
	InputShape []int
	Classes    int
}
