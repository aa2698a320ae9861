package gocode

import (
	"github.com/cnnc/cnnc/ir"
)

// The 2x2, stride 2, unpadded max pooling of LeNet- and VGG-style nets gets
// branch-free kernels: the general ones keep a running maximum with
// "if v > best", a branch that random data mispredicts half the time, and
// that made max pooling a quarter of LeNet-5's training step. Here the
// forward pass is gemm.MaxPool2x2 (AVX2 for rows of 8 outputs or more, Go's
// max otherwise), and the backward pass finds the first window element
// equal to the maximum with conditional moves: the same element the
// reference evaluator picks (the first maximum in row-major window order),
// NaN aside. Other pools use emitPool and emitMaxPoolBackward.

// pool2x2 reports whether n pools 2x2 windows with stride 2 and no padding.
func pool2x2(n *ir.Node) bool {
	a := n.Attrs
	return a.Kernel == [2]int{2, 2} && a.Stride == [2]int{2, 2} && a.Pad == [2]int{}
}

func emitMaxPool(n *ir.Node, c *Context) (*Kernel, error) {
	if n.Op != ir.OpMaxPool || !pool2x2(n) {
		return emitPool(n, c)
	}
	d, err := poolData(n, n.Args[0].Shape)
	if err != nil {
		return nil, err
	}
	body := expand(`for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		gemm.MaxPool2x2(y[(s*{{.C}}+ch)*{{mul .OH .OW}}:][:{{mul .OH .OW}}], a0[(s*{{.C}}+ch)*{{mul .H .W}}:][:{{mul .H .W}}], {{.OH}}, {{.OW}}, {{.W}})
	}
}
`, d)
	return &Kernel{Args: []Arg{{"a0", 0}}, Phases: []Phase{{Split: PerSample, Body: body}}}, nil
}

func emitMaxPoolBackwardFast(n *ir.Node, c *Context) (*Kernel, error) {
	if !pool2x2(n) {
		return emitMaxPoolBackward(n, c)
	}
	d, err := poolData(n, n.Args[0].Shape)
	if err != nil {
		return nil, err
	}
	body := expand(`for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		xc := x[(s*{{.C}}+ch)*{{mul .H .W}}:][:{{mul .H .W}}]
		dx := y[(s*{{.C}}+ch)*{{mul .H .W}}:][:{{mul .H .W}}]
		dc := dy[(s*{{.C}}+ch)*{{mul .OH .OW}}:][:{{mul .OH .OW}}]
		clear(dx)
		for i := 0; i < {{.OH}}; i++ {
			r0 := (*[{{mul 2 .OW}}]float32)(xc[2*i*{{.W}}:])
			r1 := (*[{{mul 2 .OW}}]float32)(xc[(2*i+1)*{{.W}}:])
			dr := (*[{{.OW}}]float32)(dc[i*{{.OW}}:])
			base := 2 * i * {{.W}}
			for j, g := range dr {
				a, b, c, d := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
				m := max(max(a, b), max(c, d))
				// The first of a, b, c, d equal to m, as conditional moves.
				k := {{add .W 1}}
				if c == m {
					k = {{.W}}
				}
				if b == m {
					k = 1
				}
				if a == m {
					k = 0
				}
				dx[base+2*j+k] = g
			}
		}
	}
}
`, d)
	return &Kernel{Args: []Arg{{"x", 0}, {"dy", 1}}, Phases: []Phase{{Split: PerSample, Body: body}}}, nil
}
