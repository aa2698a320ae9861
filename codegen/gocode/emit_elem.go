package gocode

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// span returns the split and unit for an element-wise kernel over n's
// value: per sample when n is batched, over its elements otherwise.
func span(n *ir.Node, c *Context) Phase {
	if c.Batched(n) {
		return Phase{Split: PerSample}
	}
	return Phase{Split: PerIndex, Count: n.Shape.Size()}
}

// elementwise builds a kernel that sets ys[i] = expr for each element i,
// where the arguments' elements are named v (arg 0) and u (arg 1) and idx is
// the element's row-major index in the whole tensor.
func elementwise(n *ir.Node, c *Context, nargs int, expr string, needIdx, step bool) *Kernel {
	names := []string{"v", "u"}
	body := "ys := y[lo:hi]\n"
	for i := 0; i < nargs; i++ {
		body += fmt.Sprintf("x%d := a%d[lo:hi][:len(ys)]\n", i, i)
	}
	body += "for i := range ys {\n"
	for i := 0; i < nargs; i++ {
		body += fmt.Sprintf("%s := x%d[i]\n", names[i], i)
	}
	if needIdx {
		body += "idx := uint64(lo + i)\n"
	}
	body += expr + "\n}\n"
	return elementKernel(n, c, nargs, body, step)
}

// elementCall builds a kernel that calls fn(y, a0[, a1]) on the elements
// of its span, for an element-wise op that package elem implements.
func elementCall(n *ir.Node, c *Context, nargs int, fn string) *Kernel {
	body := fn + "(y[lo:hi]"
	for i := 0; i < nargs; i++ {
		body += fmt.Sprintf(", a%d[lo:hi]", i)
	}
	return elementKernel(n, c, nargs, body+")\n", false)
}

// elementKernel returns the kernel of an element-wise op over n's value
// whose body works on the elements [lo, hi) of y and the arguments a0...
func elementKernel(n *ir.Node, c *Context, nargs int, body string, step bool) *Kernel {
	p := span(n, c)
	if p.Split == PerSample {
		if unit := c.PerSample(n); unit != 1 {
			body = fmt.Sprintf("lo, hi = %s, %s\n", scaled("lo", unit), scaled("hi", unit)) + body
		}
	}
	k := &Kernel{Step: step}
	for i := 0; i < nargs; i++ {
		k.Args = append(k.Args, Arg{Name: fmt.Sprintf("a%d", i), Index: i})
	}
	p.Body = body
	k.Phases = []Phase{p}
	return k
}

func emitUnary(n *ir.Node, c *Context) (*Kernel, error) {
	a := n.Attrs
	switch n.Op {
	case ir.OpReLU:
		return elementwise(n, c, 1, "ys[i] = max(v, 0)", false, false), nil
	case ir.OpLeakyReLU:
		return elementwise(n, c, 1, fmt.Sprintf("if v > 0 { ys[i] = v } else { ys[i] = %s * v }", f32lit(a.Alpha)), false, false), nil
	case ir.OpTanh:
		return elementCall(n, c, 1, "elem.Tanh"), nil
	case ir.OpSigmoid:
		return elementwise(n, c, 1, "ys[i] = float32(1 / (1 + math.Exp(-float64(v))))", false, false), nil
	case ir.OpScale:
		return elementwise(n, c, 1, fmt.Sprintf("ys[i] = %s * v", f32lit(a.Alpha)), false, false), nil
	case ir.OpDropout, ir.OpDropoutBackward:
		scale := 1.0
		if !a.Classic {
			scale = 1 / a.Keep
		}
		expr := fmt.Sprintf("if float64(runtime.Uniform01(seed, step, idx)) < %s { ys[i] = v * %s } else { ys[i] = 0 }",
			f64lit(a.Keep), f32lit(scale))
		if scale == 1 {
			expr = fmt.Sprintf("if float64(runtime.Uniform01(seed, step, idx)) < %s { ys[i] = v } else { ys[i] = 0 }", f64lit(a.Keep))
		}
		return elementwise(n, c, 1, expr, true, true), nil
	}
	return nil, fmt.Errorf("emitUnary: unexpected op %s", n.Op)
}

func emitBinary(n *ir.Node, c *Context) (*Kernel, error) {
	switch n.Op {
	case ir.OpAdd:
		return elementwise(n, c, 2, "ys[i] = v + u", false, false), nil
	case ir.OpReLUBackward:
		return elementCall(n, c, 2, "elem.ReLUBackward"), nil
	case ir.OpLeakyReLUBackward:
		return elementwise(n, c, 2, fmt.Sprintf("if v > 0 { ys[i] = u } else { ys[i] = %s * u }", f32lit(n.Attrs.Alpha)), false, false), nil
	case ir.OpTanhBackward:
		return elementCall(n, c, 2, "elem.TanhBackward"), nil
	case ir.OpSigmoidBackward:
		return elementwise(n, c, 2, "ys[i] = u * v * (1 - v)", false, false), nil
	}
	return nil, fmt.Errorf("emitBinary: unexpected op %s", n.Op)
}
