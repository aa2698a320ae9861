package runtime

import (
	"fmt"

	"github.com/cnnc/cnnc/runtime/elem"
)

// parallelMin is the size from which an optimiser splits its update over
// the pool; below it the hand-off costs more than it saves.
const parallelMin = 1 << 15

// SGD is stochastic gradient descent with momentum, Nesterov momentum and
// weight decay, with the update of PyTorch's torch.optim.SGD (dampening
// 0). For each parameter p with gradient g:
//
//	g = g + WeightDecay*p                 if WeightDecay != 0
//	v = g                                 on the first step (Steps == 0)
//	v = Momentum*v + g                    on later steps
//	v = 0                                 where |v| < 2^-126 (subnormal)
//	g = g + Momentum*v                    if Nesterov
//	g = v                                 otherwise, if Momentum != 0
//	p = p - LR*g
//
// Arithmetic is float32, one rounding per operation, as PyTorch's CPU
// kernels do up to their use of fused multiply-add; elem.SGD does the
// update, in assembly where the CPU allows, with the same bits as in Go.
// The one departure from PyTorch, flushing a subnormal momentum to zero,
// keeps the update fast where gradients stay zero (see elem.SGD). Buffers
// (parameters with a nil Grad) are skipped. Step does not zero the
// gradients.
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

	// The current Step's update, which update reads: Step splits the
	// elements of all parameters, one after another, over the pool in one
	// call of updateFn, a method value bound once so that a step does not
	// allocate.
	step     sgdStep
	ends     []int // ends[i]: where parameter i's elements end; buffers have none
	updateFn func(lo, hi int)

	// Update's parameter, which updateOne reads; index maps a parameter
	// to its place in params.
	index       map[*Param]int
	one         int
	updateOneFn func(lo, hi int)
}

type sgdStep struct {
	lr, mu, wd float32
	first      bool
}

// current returns the update the next step applies: the hyperparameters
// as float32, and whether the momentum buffers still count as empty.
func (o *SGD) current() sgdStep {
	return sgdStep{float32(o.LR), float32(o.Momentum), float32(o.WeightDecay), o.Steps == 0}
}

// NewSGD returns an SGD optimiser for params that splits large updates over
// DefaultPool. It allocates a momentum buffer per trainable parameter when
// momentum is not 0.
func NewSGD(params []*Param, lr, momentum float64, nesterov bool, weightDecay float64) *SGD {
	o := &SGD{LR: lr, Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov, params: params, pool: DefaultPool()}
	o.updateFn = o.update
	o.updateOneFn = o.updateOne
	o.index = make(map[*Param]int, len(params))
	for i, p := range params {
		o.index[p] = i
	}
	if momentum != 0 {
		o.velocity = make([]*Param, len(params))
		for i, p := range params {
			if p.Grad != nil {
				o.velocity[i] = NewParam(p.Name+".momentum_buffer", p.Shape, false)
				o.velocity[i].Panels = p.Panels // laid out as p.Data
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

// Step updates every trainable parameter from its gradient. It splits the
// elements of all the parameters over the pool at once, small ones
// included, so that a model of many small layers updates in parallel too;
// each element's update is the same whichever worker does it.
func (o *SGD) Step() {
	o.step = o.current()
	o.ends = o.ends[:0]
	total := 0
	for _, p := range o.params {
		if p.Grad != nil {
			total += len(p.Data)
		}
		o.ends = append(o.ends, total)
	}
	if total >= parallelMin && o.pool != nil {
		o.pool.For(total, o.updateFn)
	} else {
		o.update(0, total)
	}
	o.Steps++
}

// Update applies Step's update to p alone, which must be one of the
// optimiser's parameters, with the current LR; Done then ends the step. A
// model's gradient hook (SetGradHook in generated code) calls it for each
// parameter as soon as the backward pass has its gradient, so that the
// update reads the gradient while it is still in cache, and the gradients
// of all the layers can share memory. Update and Done give the bits of
// Step, the update of each element being the same.
func (o *SGD) Update(p *Param) {
	i, ok := o.index[p]
	if !ok {
		panic(fmt.Sprintf("runtime: SGD.Update of %q, which is not one of the optimiser's parameters", p.Name))
	}
	if p.Grad == nil {
		return
	}
	o.step = o.current()
	o.one = i
	if n := len(p.Data); n >= parallelMin && o.pool != nil {
		o.pool.For(n, o.updateOneFn)
	} else {
		o.updateOne(0, n)
	}
}

// Done ends a step taken with Update, as Step ends its own: it counts the
// step, so that the next one's momentum is no longer the first.
func (o *SGD) Done() {
	o.Steps++
}

// UpdateRange applies Update's step to elements [lo, hi) of p alone, which
// must be one of the optimiser's parameters, so that a model's gradient
// hook can update a weight by rows as its gradient comes (see
// RangeHook): the bits of Update, each element's update being the same.
// Calls for disjoint ranges of a parameter may run at once.
func (o *SGD) UpdateRange(p *Param, lo, hi int) {
	i, ok := o.index[p]
	if !ok {
		panic(fmt.Sprintf("runtime: SGD.UpdateRange of %q, which is not one of the optimiser's parameters", p.Name))
	}
	if p.Grad != nil {
		o.apply(i, lo, hi, o.current())
	}
}

// Reads returns what UpdateRange reads of p besides its gradient: its
// data and its momentum buffer, if it has one.
func (o *SGD) Reads(p *Param) [][]float32 {
	r := [][]float32{p.Data}
	if i, ok := o.index[p]; ok && o.velocity != nil && o.velocity[i] != nil {
		r = append(r, o.velocity[i].Data)
	}
	return r
}

// updateOne updates elements [lo, hi) of Update's parameter.
func (o *SGD) updateOne(lo, hi int) {
	o.apply(o.one, lo, hi, o.step)
}

// apply applies step s to elements [lo, hi) of parameter i.
func (o *SGD) apply(i, lo, hi int, s sgdStep) {
	p := o.params[i]
	var v []float32
	if o.velocity != nil {
		v = o.velocity[i].Data
	}
	elem.SGD(p.Data[lo:hi], p.Grad[lo:hi], sub(v, lo, hi), s.lr, s.mu, s.wd, o.Nesterov, s.first)
}

// update updates elements [lo, hi) of the parameters taken one after
// another.
func (o *SGD) update(lo, hi int) {
	s := o.step
	start := 0
	for i, end := range o.ends {
		if end > lo && start < hi && end > start {
			o.apply(i, max(lo, start)-start, min(hi, end)-start, s)
		}
		if end >= hi {
			return
		}
		start = end
	}
}

func sub(s []float32, lo, hi int) []float32 {
	if s == nil {
		return nil
	}
	return s[lo:hi]
}
