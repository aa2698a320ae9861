package gocode

import (
	"github.com/cnnc/cnnc/ir"
)

// The 2x2, stride 2, unpadded max pooling of LeNet- and VGG-style nets gets
// branch-free kernels: the general ones keep a running maximum with
// "if v > best", a branch that random data mispredicts half the time, and
// that made max pooling a quarter of LeNet-5's training step. Here the
// forward pass is gemm.MaxPool2x2 and the backward pass
// gemm.MaxPool2x2Backward (AVX-512 for any width, AVX2 for rows of 8
// outputs or more, Go otherwise), each called once for all the planes of
// a phase's samples where their heights are even. The backward gives the
// gradient to the first window element equal to the maximum: the same
// element the reference evaluator picks (the first maximum in row-major
// window order), NaN aside. The backward through the ReLU before the pool
// (maxpool_relu_backward) is gemm.MaxPool2x2ReLUBackward, which masks each
// window's gradient as it stores it. Other pools use emitPool and
// emitMaxPoolBackward.

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
	stack(d)
	body := expand(`
{{- if .Stack}}
gemm.MaxPool2x2(y[lo*{{mul .C .OH .OW}}:hi*{{mul .C .OH .OW}}], a0[lo*{{mul .C .H .W}}:hi*{{mul .C .H .W}}], (hi-lo)*{{mul .C .OH}}, {{.OW}}, {{.W}})
{{- else}}
for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		gemm.MaxPool2x2(y[(s*{{.C}}+ch)*{{mul .OH .OW}}:][:{{mul .OH .OW}}], a0[(s*{{.C}}+ch)*{{mul .H .W}}:][:{{mul .H .W}}], {{.OH}}, {{.OW}}, {{.W}})
	}
}
{{- end}}
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
	d["Edge"] = d["H"].(int) != 2*d["OH"].(int) || d["W"].(int) != 2*d["OW"].(int)
	d["Backward"] = "MaxPool2x2Backward"
	if n.Op == ir.OpMaxPoolReLUBackward {
		d["Backward"] = "MaxPool2x2ReLUBackward"
	}
	stack(d)
	body := expand(`
{{- if .Stack}}
dx := y[lo*{{mul .C .H .W}}:hi*{{mul .C .H .W}}]
{{- if .Edge}}
clear(dx) // the column past the windows
{{- end}}
gemm.{{.Backward}}(dx, x[lo*{{mul .C .H .W}}:hi*{{mul .C .H .W}}], dy[lo*{{mul .C .OH .OW}}:hi*{{mul .C .OH .OW}}], (hi-lo)*{{mul .C .OH}}, {{.OW}}, {{.W}})
{{- else}}
for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		dx := y[(s*{{.C}}+ch)*{{mul .H .W}}:][:{{mul .H .W}}]
{{- if .Edge}}
		clear(dx) // the row or column past the windows
{{- end}}
		gemm.{{.Backward}}(dx, x[(s*{{.C}}+ch)*{{mul .H .W}}:][:{{mul .H .W}}], dy[(s*{{.C}}+ch)*{{mul .OH .OW}}:][:{{mul .OH .OW}}], {{.OH}}, {{.OW}}, {{.W}})
	}
}
{{- end}}
`, d)
	return &Kernel{Args: []Arg{{"x", 0}, {"dy", 1}}, Phases: []Phase{{Split: PerSample, Body: body}}}, nil
}

// stack sets d's Stack: whether every plane of the batch has an even
// height, all of it in windows, so that the planes of samples [lo, hi)
// stack into one plane of (hi-lo)*C*OH rows of windows that one call
// pools.
func stack(d map[string]any) {
	d["Stack"] = d["H"].(int) == 2*d["OH"].(int)
}
