package gocode

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// classes returns K for a [N, K] argument.
func classes(n *ir.Node, arg int) (int, error) {
	s := n.Args[arg].Shape
	if len(s) != 2 {
		return 0, fmt.Errorf("%v: argument %d has shape %v, want [N, K]", n, arg, s)
	}
	return s[1], nil
}

// rowExpSum is the template that sets mx, the largest logit of row, and
// e, the sum of exp(v - mx) over the row: the stable soft-max's parts.
const rowExpSum = `	mx := float64(row[0])
	for _, v := range row[1:] {
		mx = max(mx, float64(v))
	}
	var e float64
	for _, v := range row {
		e += math.Exp(float64(v) - mx)
	}
`

func emitSoftmaxCrossEntropy(n *ir.Node, c *Context) (*Kernel, error) {
	K, err := classes(n, 0)
	if err != nil {
		return nil, err
	}
	body := expand(`var sum float64
for s := 0; s < n; s++ {
	row := a0[s*{{.K}} : s*{{.K}}+{{.K}}]
`+rowExpSum+`	sum += math.Log(e) + mx - float64(row[a1[s]])
}
y[0] = float32(sum / float64(n))
`, map[string]any{"K": K})
	return &Kernel{
		Args:   []Arg{{"a0", 0}, {"a1", 1}},
		Phases: []Phase{{Split: Serial, Body: body}},
	}, nil
}

func emitSoftmaxCrossEntropyBackward(n *ir.Node, c *Context) (*Kernel, error) {
	K, err := classes(n, 0)
	if err != nil {
		return nil, err
	}
	body := expand(`g := float64(a2[0]) / float64(n)
for s := lo; s < hi; s++ {
	row := a0[s*{{.K}} : s*{{.K}}+{{.K}}]
	dx := y[s*{{.K}} : s*{{.K}}+{{.K}}]
`+rowExpSum+`	label := int(a1[s])
	for k, v := range row {
		p := math.Exp(float64(v)-mx) / e
		if k == label {
			p--
		}
		dx[k] = float32(g * p)
	}
}
`, map[string]any{"K": K})
	return &Kernel{
		Args:   []Arg{{"a0", 0}, {"a1", 1}, {"a2", 2}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitSVMLoss(n *ir.Node, c *Context) (*Kernel, error) {
	K, err := classes(n, 0)
	if err != nil {
		return nil, err
	}
	body := expand(`var sum float64
for s := 0; s < n; s++ {
	row := a0[s*{{.K}} : s*{{.K}}+{{.K}}]
	label := int(a1[s])
	sy := float64(row[label])
	for k, v := range row {
		if k != label {
			sum += max(0, float64(v)-sy+{{f64 .Margin}})
		}
	}
}
y[0] = float32(sum / float64(n))
`, map[string]any{"K": K, "Margin": n.Attrs.Margin})
	return &Kernel{
		Args:   []Arg{{"a0", 0}, {"a1", 1}},
		Phases: []Phase{{Split: Serial, Body: body}},
	}, nil
}

func emitSVMLossBackward(n *ir.Node, c *Context) (*Kernel, error) {
	K, err := classes(n, 0)
	if err != nil {
		return nil, err
	}
	body := expand(`g := float64(a2[0]) / float64(n)
for s := lo; s < hi; s++ {
	row := a0[s*{{.K}} : s*{{.K}}+{{.K}}]
	dx := y[s*{{.K}} : s*{{.K}}+{{.K}}]
	label := int(a1[s])
	sy := float64(row[label])
	var acc [{{.K}}]float64
	for k, v := range row {
		if k != label && float64(v)-sy+{{f64 .Margin}} > 0 {
			acc[k] += g
			acc[label] -= g
		}
	}
	for k := range dx {
		dx[k] = float32(acc[k])
	}
}
`, map[string]any{"K": K, "Margin": n.Attrs.Margin})
	return &Kernel{
		Args:   []Arg{{"a0", 0}, {"a1", 1}, {"a2", 2}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitSoftmax(n *ir.Node, c *Context) (*Kernel, error) {
	K, err := classes(n, 0)
	if err != nil {
		return nil, err
	}
	body := expand(`for s := lo; s < hi; s++ {
	row := a0[s*{{.K}} : s*{{.K}}+{{.K}}]
	out := y[s*{{.K}} : s*{{.K}}+{{.K}}]
	mx := float64(row[0])
	for _, v := range row[1:] {
		mx = max(mx, float64(v))
	}
	var e float64
	for _, v := range row {
		e += math.Exp(float64(v) - mx)
	}
	for k, v := range row {
		out[k] = float32(math.Exp(float64(v)-mx) / e)
	}
}
`, map[string]any{"K": K})
	return &Kernel{
		Args:   []Arg{{"a0", 0}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitSoftmaxBackward(n *ir.Node, c *Context) (*Kernel, error) {
	K, err := classes(n, 0)
	if err != nil {
		return nil, err
	}
	body := expand(`for s := lo; s < hi; s++ {
	yr := a0[s*{{.K}} : s*{{.K}}+{{.K}}]
	dy := a1[s*{{.K}} : s*{{.K}}+{{.K}}]
	dx := y[s*{{.K}} : s*{{.K}}+{{.K}}]
	var dot float64
	for k, v := range yr {
		dot += float64(dy[k]) * float64(v)
	}
	for k, v := range yr {
		dx[k] = float32(float64(v) * (float64(dy[k]) - dot))
	}
}
`, map[string]any{"K": K})
	return &Kernel{
		Args:   []Arg{{"a0", 0}, {"a1", 1}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitPenalty(n *ir.Node, c *Context) (*Kernel, error) {
	a := n.Attrs
	var term string
	switch n.Op {
	case ir.OpL2:
		term = "w * w"
	case ir.OpL1:
		term = "math.Abs(w)"
	case ir.OpElasticNet:
		term = fmt.Sprintf("%s*w*w + math.Abs(w)", f64lit(a.Beta))
	}
	body := fmt.Sprintf(`var sum float64
for _, v := range a0 {
	w := float64(v)
	sum += %s
}
y[0] = float32(%s * sum)
`, term, f64lit(a.Lambda))
	return &Kernel{
		Args:   []Arg{{"a0", 0}},
		Phases: []Phase{{Split: Serial, Body: body}},
	}, nil
}

func emitPenaltyBackward(n *ir.Node, c *Context) (*Kernel, error) {
	a := n.Attrs
	var expr string
	sign := "sign := 0.0\nif w > 0 { sign = 1 } else if w < 0 { sign = -1 }\n"
	switch n.Op {
	case ir.OpL2Backward:
		expr = fmt.Sprintf("ys[i] = float32(d * %s * w)", f64lit(2*a.Lambda))
	case ir.OpL1Backward:
		expr = sign + fmt.Sprintf("ys[i] = float32(d * %s * sign)", f64lit(a.Lambda))
	case ir.OpElasticNetBackward:
		expr = sign + fmt.Sprintf("ys[i] = float32(d * %s * (%s*w + sign))", f64lit(a.Lambda), f64lit(2*a.Beta))
	}
	body := fmt.Sprintf(`d := float64(a1[0])
ys := y[lo:hi]
ws := a0[lo:hi][:len(ys)]
for i, v := range ws {
	w := float64(v)
	%s
}
`, expr)
	return &Kernel{
		Args:   []Arg{{"a0", 0}, {"a1", 1}},
		Phases: []Phase{{Split: PerIndex, Count: n.Shape.Size(), Body: body}},
	}, nil
}
