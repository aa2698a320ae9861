package runtime

import "github.com/cnnc/cnnc/runtime/elem"

// parallelMin is the size from which an optimiser splits a parameter's
// update over the pool; below it the hand-off costs more than it saves.
const parallelMin = 1 << 15

// SGD is stochastic gradient descent with momentum, Nesterov momentum and
// weight decay, with exactly the update of PyTorch's torch.optim.SGD
// (dampening 0). For each parameter p with gradient g:
//
//	g = g + WeightDecay*p                 if WeightDecay != 0
//	v = g                                 on the first step (Steps == 0)
//	v = Momentum*v + g                    on later steps
//	g = g + Momentum*v                    if Nesterov
//	g = v                                 otherwise, if Momentum != 0
//	p = p - LR*g
//
// Arithmetic is float32, one rounding per operation, as PyTorch's CPU
// kernels do up to their use of fused multiply-add; elem.SGD does the
// update, in assembly where the CPU allows, with the same bits as in Go. Buffers (parameters with
// a nil Grad) are skipped. Step does not zero the gradients.
type SGD struct {
	LR, Momentum, WeightDecay float64
	Nesterov                  bool

	// Steps counts the calls to Step. While it is 0 the momentum buffers
	// count as empty, like PyTorch's None; set it to a positive value after
	// restoring State from a checkpoint.
	Steps int

	params   []*Param
	velocity []*Param // nil when Momentum is 0; nil entries for buffers
	pool     *Pool
}

// NewSGD returns an SGD optimiser for params that splits large updates over
// DefaultPool. It allocates a momentum buffer per trainable parameter when
// momentum is not 0.
func NewSGD(params []*Param, lr, momentum float64, nesterov bool, weightDecay float64) *SGD {
	o := &SGD{LR: lr, Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov, params: params, pool: DefaultPool()}
	if momentum != 0 {
		o.velocity = make([]*Param, len(params))
		for i, p := range params {
			if p.Grad != nil {
				o.velocity[i] = NewParam(p.Name+".momentum_buffer", p.Shape, false)
			}
		}
	}
	return o
}

// SetLR sets the learning rate used by the following steps.
func (o *SGD) SetLR(lr float64) {
	o.LR = lr
}

// State returns the momentum buffers, one per trainable parameter, named
// "<param>.momentum_buffer", for saving in a checkpoint and loading back. It
// returns nil when Momentum is 0.
func (o *SGD) State() []*Param {
	var s []*Param
	for _, v := range o.velocity {
		if v != nil {
			s = append(s, v)
		}
	}
	return s
}

// Step updates every trainable parameter from its gradient.
func (o *SGD) Step() {
	lr, mu, wd := float32(o.LR), float32(o.Momentum), float32(o.WeightDecay)
	first := o.Steps == 0
	for i, p := range o.params {
		if p.Grad == nil {
			continue
		}
		var v []float32
		if o.velocity != nil {
			v = o.velocity[i].Data
		}
		update := func(lo, hi int) {
			elem.SGD(p.Data[lo:hi], p.Grad[lo:hi], sub(v, lo, hi), lr, mu, wd, o.Nesterov, first)
		}
		if n := len(p.Data); n >= parallelMin && o.pool != nil {
			o.pool.For(n, update)
		} else {
			update(0, n)
		}
	}
	o.Steps++
}

func sub(s []float32, lo, hi int) []float32 {
	if s == nil {
		return nil
	}
	return s[lo:hi]
}
