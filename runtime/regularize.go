package runtime

import "strings"

// IsWeight reports whether p is a weight that regularisation and
// initialisation overrides act on: a trainable parameter named
// "<layer>.weight" with at least two dimensions, such as a Conv2d or Linear
// weight. Biases and batch-norm scales and shifts (one dimension) are not.
func IsWeight(p *Param) bool {
	return p.Grad != nil && len(p.Shape) >= 2 && strings.HasSuffix(p.Name, ".weight")
}

// Weights returns the parameters of params for which IsWeight holds.
func Weights(params []*Param) []*Param {
	var w []*Param
	for _, p := range params {
		if IsWeight(p) {
			w = append(w, p)
		}
	}
	return w
}

// AddL1Grad adds the gradient of the L1 penalty lambda * sum |w| to the Grad
// of each of params: lambda * sign(w), with sign(0) = 0, which is ir's
// l1_backward with a loss gradient of 1. A trainer calls it after the
// backward pass and before the optimiser's step.
func AddL1Grad(params []*Param, lambda float64) {
	AddElasticNetGrad(params, lambda, 0)
}

// AddElasticNetGrad adds the gradient of the elastic-net penalty
// lambda * sum (beta*w^2 + |w|) to the Grad of each of params:
// lambda * (2*beta*w + sign(w)), with sign(0) = 0, which is ir's
// elasticnet_backward with a loss gradient of 1. With beta = 0 it is the L1
// penalty; the L2 part alone is the optimiser's weight decay with
// WeightDecay = 2*lambda*beta. Arithmetic is float64, rounded once to
// float32 when added. Buffers (a nil Grad) are skipped.
func AddElasticNetGrad(params []*Param, lambda, beta float64) {
	for _, p := range params {
		AddElasticNetGradOf(p, lambda, beta)
	}
}

// AddElasticNetGradOf is AddElasticNetGrad for the one parameter p, for a
// model's gradient hook, which sees the parameters one at a time.
func AddElasticNetGradOf(p *Param, lambda, beta float64) {
	AddElasticNetGradRange(p, lambda, beta, 0, len(p.Data))
}

// AddElasticNetGradRange is AddElasticNetGradOf for elements [lo, hi) of
// p, for a range hook (see GradHook.Rows), which sees a weight's gradient
// rows at a time.
func AddElasticNetGradRange(p *Param, lambda, beta float64, lo, hi int) {
	if lambda == 0 || p.Grad == nil { // nothing to add, or a buffer
		return
	}
	g := p.Grad[lo:hi]
	for i, w := range p.Data[lo:hi] {
		var s float64
		switch {
		case w > 0:
			s = 1
		case w < 0:
			s = -1
		}
		g[i] += float32(lambda * (2*beta*float64(w) + s))
	}
}
