package runtime

import "fmt"

// A GradHook is a generated model's gradient hook (its SetGradHook): the
// function TrainStep calls for each trainable parameter as soon as the
// backward pass has the parameter's gradient and reads the parameter no
// more, so that the function may update it in place (SGD.Update). While a
// hook is set the gradients share one buffer, laid out by the model so that
// gradients alive at the same time do not overlap: the gradients of all
// layers but a few never exist at once, and a step touches less memory.
// The zero GradHook has no hook.
type GradHook struct {
	fn     func(p *Param)
	own    [][]float32 // the parameters' own gradients while fn is set
	shared []float32
}

// Set makes fn the hook of params. While fn is not nil, params[i].Grad is
// the slice of len(params[i].Data) floats at offsets[i] of a shared buffer
// of size floats, or the parameter's own where offsets[i] is negative; Set
// with a nil fn gives every parameter its own gradient back. Set panics if
// a gradient does not fit in the buffer, a bug in the model.
func (h *GradHook) Set(params []*Param, fn func(p *Param), offsets []int, size int) {
	h.fn = fn
	if fn == nil {
		for i, g := range h.own {
			params[i].Grad = g
		}
		h.own, h.shared = nil, nil
		return
	}
	if h.own != nil {
		return
	}
	if len(offsets) != len(params) {
		panic(fmt.Sprintf("runtime: GradHook.Set with %d offsets for %d parameters", len(offsets), len(params)))
	}
	h.shared = make([]float32, size)
	for i, p := range params {
		h.own = append(h.own, p.Grad)
		if off, n := offsets[i], len(p.Data); off >= 0 {
			if off+n > size {
				panic(fmt.Sprintf("runtime: GradHook.Set: the gradient of %s, %d floats at %d, overruns the %d shared", p.Name, n, off, size))
			}
			p.Grad = h.shared[off : off+n : off+n]
		}
	}
}

// Done calls the hook, if one is set, on p.
func (h *GradHook) Done(p *Param) {
	if h.fn != nil {
		h.fn(p)
	}
}
