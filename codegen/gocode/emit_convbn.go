package gocode

import (
	"github.com/cnnc/cnnc/ir"
)

// The fused training op of a convolution, batch-norm and ReLU, and its
// backward (see ir.OpConv2DBNReLU). The forward sums each channel of a
// sample right after the sample's GEMMs, while its output is in cache, so
// the batch statistics cost no extra pass over memory; it saves them, and
// the convolution's output z, for the backward. The backward reads the
// ReLU's mask from the forward's output and the statistics it saved, and
// writes the batch-norm's input gradient where the output gradient was
// when nothing else reads that, before the convolution's two GEMMs.

// emitConvBNReLU computes conv2d_bn_relu in three phases: the convolution
// with per-slot channel sums (float64: elem.SumSqF64's lanes per sample,
// the samples in order), the statistics
// and running statistics from the slots' sums in slot order, and the
// normalisation and ReLU per sample.
func emitConvBNReLU(n *ir.Node, c *Context) (*Kernel, error) {
	d := newConvGeom(n)
	S := slots(c)
	O, OHW := d.O, d.OH*d.OW
	k := &Kernel{
		Args:    []Arg{{"x", 0}, {"w", 1}, {"gamma", 2}, {"beta", 3}, {"rmean", 4}, {"rvar", 5}},
		Results: []Arg{{"z", 1}, {"stats", 2}, {"rmeanNew", 3}, {"rvarNew", 4}},
		Scratch: []Scratch{{Name: "sums", Size: S * 2 * O, Float64: true}, {Name: "affine", Size: 2 * O}},
	}
	m := map[string]any{"O": O, "OHW": OHW, "S": S, "Eps": n.Attrs.Eps, "Momentum": n.Attrs.Momentum}
	pre := expand("sm := sums[slot*{{mul 2 .O}}:][:{{mul 2 .O}}]\nclear(sm)\n", m)
	after := expand(`for o := 0; o < {{.O}}; o++ {
	s1, s2 := elem.SumSqF64(ys[o*{{.OHW}}:][:{{.OHW}}])
	sm[o] += s1
	sm[{{.O}}+o] += s2
}
`, m)
	stats := expand(`ns := min(n, {{.S}})
cnt := float64(n * {{.OHW}})
for o := 0; o < {{.O}}; o++ {
	var s1, s2 float64
	for slot := 0; slot < ns; slot++ {
		s1 += sums[slot*{{mul 2 .O}}+o]
		s2 += sums[slot*{{mul 2 .O}}+{{.O}}+o]
	}
	mean := s1 / cnt
	variance := max(s2/cnt-mean*mean, 0)
	istd := 1 / math.Sqrt(variance+{{f64 .Eps}})
	stats[o] = float32(mean)
	stats[{{.O}}+o] = float32(istd)
	// y = relu(a*z + b), a = gamma*istd, b = beta - mean*a
	a := float64(gamma[o]) * istd
	affine[o] = float32(a)
	affine[{{.O}}+o] = float32(float64(beta[o]) - mean*a)
	rmeanNew[o] = float32((1-{{f64 .Momentum}})*float64(rmean[o]) + {{f64 .Momentum}}*mean)
	rvarNew[o] = float32((1-{{f64 .Momentum}})*float64(rvar[o]) + {{f64 .Momentum}}*variance*cnt/(cnt-1))
}
`, m)
	// One pass of a vector helper per channel scales it into y, adds the
	// shift and applies the ReLU; in Go, max(v, 0) costs a mispredicted
	// branch on about half the elements.
	apply := expand(`for s := lo; s < hi; s++ {
	ys := y[s*{{mul .O .OHW}}:][:{{mul .O .OHW}}]
	zs := z[s*{{mul .O .OHW}}:][:{{mul .O .OHW}}]
	for o := 0; o < {{.O}}; o++ {
		gemm.ScaleShiftReLU(ys[o*{{.OHW}}:][:{{.OHW}}], zs[o*{{.OHW}}:][:{{.OHW}}], affine[o], affine[{{.O}}+o])
	}
}
`, m)
	for _, ph := range d.forward(k, c, "z", pre, after, "") {
		k.Phases = append(k.Phases, withName(ph, "Conv"+ph.Name))
	}
	k.Phases = append(k.Phases,
		Phase{Name: "Stats", Split: Serial, Body: stats},
		Phase{Name: "Apply", Split: PerSample, Body: apply},
	)
	return k, nil
}

// emitConvBNReLUBackward computes conv2d_bn_relu_backward: the gradients
// of gamma and beta per channel (float32 sums per sample, added in float64
// in sample order) and dz's three coefficients per channel (computed in
// float64), then dz, the gradient of the convolution's output, per sample
// (float32), then the convolution's weight gradient and, when the graph
// uses it, its input gradient.
func emitConvBNReLUBackward(n *ir.Node, c *Context) (*Kernel, error) {
	d := newConvGeom(n)
	O, OHW := d.O, d.OH*d.OW
	k := &Kernel{
		Args:    []Arg{{"x", 0}, {"w", 1}, {"gamma", 2}, {"out", 3}, {"z", 4}, {"stats", 5}, {"dy", 6}},
		Results: []Arg{{"dbeta", 1}, {"dw", 2}},
		Scratch: []Scratch{{Name: "coef", Size: 3 * O}},
	}
	dz := "dy" // dz overwrites dy where nothing reads dy later
	if !c.Dies(n, 6) {
		dz = "dzs"
		k.Scratch = append(k.Scratch, Scratch{Name: dz, Size: c.Batch * O * OHW})
	}
	m := map[string]any{"O": O, "O2": 2 * O, "OHW": OHW, "Dz": dz}
	sums := expand(`for o := lo; o < hi; o++ {
	var sdy, sdyz float64
	for s := 0; s < n; s++ {
		off := (s*{{.O}} + o) * {{.OHW}}
		a, b := elem.BNReLUSums(dy[off:][:{{.OHW}}], out[off:][:{{.OHW}}], z[off:][:{{.OHW}}], stats[o])
		sdy += float64(a)
		sdyz += float64(b)
	}
	sdyx := sdyz * float64(stats[{{.O}}+o])
	y[o] = float32(sdyx)
	dbeta[o] = float32(sdy)
	a, cnt := float64(gamma[o])*float64(stats[{{.O}}+o]), float64(n*{{.OHW}})
	coef[o], coef[{{.O}}+o], coef[{{.O2}}+o] = float32(a), float32(a*sdyx/cnt), float32(a*sdy/cnt)
}
`, m)
	grad := expand(`for s := lo; s < hi; s++ {
	for o := 0; o < {{.O}}; o++ {
		off := (s*{{.O}} + o) * {{.OHW}}
		elem.BNReLUDz({{.Dz}}[off:][:{{.OHW}}], dy[off:][:{{.OHW}}], out[off:][:{{.OHW}}], z[off:][:{{.OHW}}], stats[o], stats[{{.O}}+o], coef[o], coef[{{.O}}+o], coef[{{.O2}}+o])
	}
}
`, m)
	k.Phases = []Phase{
		{Name: "Sums", Split: PerIndex, Count: O, Body: sums},
		{Name: "Dz", Split: PerSample, Body: grad},
	}
	for _, ph := range d.backwardFilter(k, c, dz, "dw") {
		k.Phases = append(k.Phases, withName(ph, "Filter"+ph.Name))
	}
	if c.HasResult(n, 3) {
		k.Results = append(k.Results, Arg{"dx", 3})
		for _, ph := range d.backwardData(k, c, dz, "dx") {
			k.Phases = append(k.Phases, withName(ph, "Data"+ph.Name))
		}
	}
	return k, nil
}

// withName returns ph named name.
func withName(ph Phase, name string) Phase {
	ph.Name = name
	return ph
}
