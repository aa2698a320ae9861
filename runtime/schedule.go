package runtime

import "math"

// A Schedule gives the learning rate for each epoch, counted from 0.
type Schedule interface {
	LR(epoch int) float64
}

// Constant is a schedule that keeps the learning rate at Base.
type Constant struct {
	Base float64
}

// LR returns c.Base.
func (c Constant) LR(epoch int) float64 {
	return c.Base
}

// StepDecay multiplies the learning rate by Gamma at each epoch listed in
// StepEpochs, like PyTorch's MultiStepLR stepped once per epoch: epoch e uses
// Base * Gamma^k, where k counts the entries of StepEpochs that are <= e. An
// epoch listed twice counts twice, as in PyTorch.
type StepDecay struct {
	Base       float64
	Gamma      float64
	StepEpochs []int
}

// LR returns the learning rate for epoch.
func (s StepDecay) LR(epoch int) float64 {
	k := 0
	for _, m := range s.StepEpochs {
		if m <= epoch {
			k++
		}
	}
	return s.Base * math.Pow(s.Gamma, float64(k))
}
