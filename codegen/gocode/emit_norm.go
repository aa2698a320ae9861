package gocode

import (
	"fmt"
	"strings"

	"github.com/cnnc/cnnc/ir"
)

// chw returns the channels and the elements per channel of one sample of a
// [N, C, ...] value.
func chw(s ir.Shape) (C, HW int) {
	C, HW = s[1], 1
	for _, d := range s[2:] {
		HW *= d
	}
	return C, HW
}

// emitBiasGrad sums the gradient per channel; for relu_biasgrad only where
// the ReLU's output (arg 0, "out") is positive.
//
// A linear layer's (one value per channel) sums each split's channels over
// the samples in float64 with one call (elem.ColSumF64), which keeps 16
// channels' sums in registers down the samples' rows.
func emitBiasGrad(n *ir.Node, c *Context) (*Kernel, error) {
	masked := n.Op == ir.OpReLUBiasGrad
	C, HW := chw(n.Args[len(n.Args)-1].Shape)
	if HW == 1 {
		body := expand(`acc := accs[lo:hi]
{{- if .Masked}}
elem.ColSumReLUF64(acc, a0[lo:], out[lo:], n, {{.C}})
{{- else}}
elem.ColSumF64(acc, a0[lo:], n, {{.C}})
{{- end}}
for i, v := range acc {
	y[lo+i] = float32(v)
}
`, map[string]any{"C": C, "Masked": masked})
		k := &Kernel{
			Args:    []Arg{{"a0", 0}},
			Scratch: []Scratch{{Name: "accs", Size: C, Float64: true}},
			Phases:  []Phase{{Split: PerIndex, Count: C, Body: body}},
		}
		if masked {
			k.Args = []Arg{{"out", 0}, {"a0", 1}}
		}
		return k, nil
	}
	body := expand(`for ch := lo; ch < hi; ch++ {
	var acc float64
	for s := 0; s < n; s++ {
		off := (s*{{.C}} + ch) * {{.HW}}
		row := a0[off : off+{{.HW}}]
{{- if .Masked}}
		acc += float64(elem.SumReLU(row, out[off:off+{{.HW}}]))
{{- else}}
		acc += float64(elem.Sum(row))
{{- end}}
	}
	y[ch] = float32(acc)
}
`, map[string]any{"C": C, "HW": HW, "Masked": masked})
	k := &Kernel{
		Args:   []Arg{{"a0", 0}},
		Phases: []Phase{{Split: PerIndex, Count: C, Body: body}},
	}
	if masked {
		k.Args = []Arg{{"out", 0}, {"a0", 1}}
	}
	return k, nil
}

// bnStats is the template that sets mean, variance (biased) and m, the
// count, for channel ch of x over the n samples, in float64.
const bnStats = `m := float64(n * {{.HW}})
var sum float64
for s := 0; s < n; s++ {
	for _, v := range x[(s*{{.C}}+ch)*{{.HW}} : (s*{{.C}}+ch)*{{.HW}}+{{.HW}}] {
		sum += float64(v)
	}
}
mean := sum / m
var sq float64
for s := 0; s < n; s++ {
	for _, v := range x[(s*{{.C}}+ch)*{{.HW}} : (s*{{.C}}+ch)*{{.HW}}+{{.HW}}] {
		d := float64(v) - mean
		sq += d * d
	}
}
variance := sq / m
`

func bnData(n *ir.Node) map[string]any {
	C, HW := chw(n.Args[0].Shape)
	return map[string]any{"C": C, "HW": HW, "Eps": n.Attrs.Eps, "Momentum": n.Attrs.Momentum,
		"ReLU":   n.Op == ir.OpBatchNormReLU,
		"Masked": n.Op == ir.OpBatchNormReLUBackward || n.Op == ir.OpBatchNormReLUBackwardGamma}
}

func emitBatchNorm(n *ir.Node, c *Context) (*Kernel, error) {
	d := bnData(n)
	body := expand(`for ch := lo; ch < hi; ch++ {
`+bnStats+`	sc := float64(gamma[ch]) / math.Sqrt(variance+{{f64 .Eps}})
	beta := float64(bias[ch])
	for s := 0; s < n; s++ {
		off := (s*{{.C}} + ch) * {{.HW}}
		xr := x[off : off+{{.HW}}]
		yr := y[off : off+{{.HW}}]
		for i, v := range xr {
{{- if .ReLU}}
			yr[i] = float32(max((float64(v)-mean)*sc+beta, 0))
{{- else}}
			yr[i] = float32((float64(v)-mean)*sc + beta)
{{- end}}
		}
	}
	_ = variance
}
`, d)
	return &Kernel{
		Args:   []Arg{{"x", 0}, {"gamma", 1}, {"bias", 2}},
		Phases: []Phase{{Split: PerIndex, Count: d["C"].(int), Body: body}},
	}, nil
}

func emitBatchNormInfer(n *ir.Node, c *Context) (*Kernel, error) {
	d := bnData(n)
	body := expand(`for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		sc := float64(gamma[ch]) / math.Sqrt(float64(rvar[ch])+{{f64 .Eps}})
		mean, beta := float64(rmean[ch]), float64(bias[ch])
		off := (s*{{.C}} + ch) * {{.HW}}
		xr := x[off : off+{{.HW}}]
		yr := y[off : off+{{.HW}}]
		for i, v := range xr {
			yr[i] = float32((float64(v)-mean)*sc + beta)
		}
	}
}
`, d)
	return &Kernel{
		Args:   []Arg{{"x", 0}, {"gamma", 1}, {"bias", 2}, {"rmean", 3}, {"rvar", 4}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitRunningStat(n *ir.Node, c *Context) (*Kernel, error) {
	d := bnData(n)
	stat := "mean"
	if n.Op == ir.OpRunningVar {
		stat = "variance * m / (m - 1)"
	}
	body := expand(`for ch := lo; ch < hi; ch++ {
`+bnStats+`	_ = variance
	y[ch] = float32((1-{{f64 .Momentum}})*float64(old[ch]) + {{f64 .Momentum}}*(`+stat+`))
}
`, d)
	return &Kernel{
		Args:   []Arg{{"x", 0}, {"old", 1}},
		Phases: []Phase{{Split: PerIndex, Count: d["C"].(int), Body: body}},
	}, nil
}

func emitBatchNormBackward(n *ir.Node, c *Context) (*Kernel, error) {
	d := bnData(n)
	body := expand(`for ch := lo; ch < hi; ch++ {
`+bnStats+`	istd := 1 / math.Sqrt(variance+{{f64 .Eps}})
	var sdy, sdyx float64
	for s := 0; s < n; s++ {
		off := (s*{{.C}} + ch) * {{.HW}}
		dr := dy[off : off+{{.HW}}]
		for i, v := range x[off : off+{{.HW}}] {
{{- if .Masked}}
			g := float64(runtime.ReLUGrad(dr[i], out[off+i]))
{{- else}}
			g := float64(dr[i])
{{- end}}
			sdy += g
			sdyx += g * (float64(v) - mean) * istd
		}
	}
	k := float64(gamma[ch]) * istd / m
	for s := 0; s < n; s++ {
		off := (s*{{.C}} + ch) * {{.HW}}
		dr := dy[off : off+{{.HW}}]
		dx := y[off : off+{{.HW}}]
		for i, v := range x[off : off+{{.HW}}] {
{{- if .Masked}}
			g := float64(runtime.ReLUGrad(dr[i], out[off+i]))
{{- else}}
			g := float64(dr[i])
{{- end}}
			xh := (float64(v) - mean) * istd
			dx[i] = float32(k * (m*g - sdy - xh*sdyx))
		}
	}
}
`, d)
	k := &Kernel{
		Args:   []Arg{{"x", 0}, {"gamma", 1}, {"dy", 2}},
		Phases: []Phase{{Split: PerIndex, Count: d["C"].(int), Body: body}},
	}
	if d["Masked"].(bool) {
		k.Args = []Arg{{"x", 0}, {"gamma", 1}, {"out", 2}, {"dy", 3}}
	}
	return k, nil
}

func emitBatchNormBackwardGamma(n *ir.Node, c *Context) (*Kernel, error) {
	d := bnData(n)
	body := expand(`for ch := lo; ch < hi; ch++ {
`+bnStats+`	istd := 1 / math.Sqrt(variance+{{f64 .Eps}})
	var acc float64
	for s := 0; s < n; s++ {
		off := (s*{{.C}} + ch) * {{.HW}}
		dr := dy[off : off+{{.HW}}]
		for i, v := range x[off : off+{{.HW}}] {
{{- if .Masked}}
			g := float64(runtime.ReLUGrad(dr[i], out[off+i]))
{{- else}}
			g := float64(dr[i])
{{- end}}
			acc += g * (float64(v) - mean) * istd
		}
	}
	y[ch] = float32(acc)
}
`, d)
	k := &Kernel{
		Args:   []Arg{{"x", 0}, {"dy", 1}},
		Phases: []Phase{{Split: PerIndex, Count: d["C"].(int), Body: body}},
	}
	if d["Masked"].(bool) {
		k.Args = []Arg{{"x", 0}, {"out", 1}, {"dy", 2}}
	}
	return k, nil
}

// poolData returns the template data of a pooling node whose input has
// shape in.
func poolData(n *ir.Node, in ir.Shape) (map[string]any, error) {
	if len(in) != 4 {
		return nil, fmt.Errorf("%v: input has shape %v, want [N, C, H, W]", n, in)
	}
	a := n.Attrs
	OH := ir.ConvOut(in[2], a.Kernel[0], a.Stride[0], a.Pad[0], 1)
	OW := ir.ConvOut(in[3], a.Kernel[1], a.Stride[1], a.Pad[1], 1)
	return map[string]any{
		"C": in[1], "H": in[2], "W": in[3], "OH": OH, "OW": OW,
		"KH": a.Kernel[0], "KW": a.Kernel[1], "SH": a.Stride[0], "SW": a.Stride[1],
		"PH": a.Pad[0], "PW": a.Pad[1],
		"Inv": 1 / float64(a.Kernel[0]*a.Kernel[1]),
	}, nil
}

// poolWindow is the template that walks the real elements of window (i, j):
// it runs the body {{.Inner}} with ih, iw and at = ih*W+iw set.
const poolWindow = `for p := 0; p < {{.KH}}; p++ {
	ih := i*{{.SH}} - {{.PH}} + p
{{- if gt .PH 0}}
	if ih < 0 || ih >= {{.H}} {
		continue
	}
{{- end}}
	for q := 0; q < {{.KW}}; q++ {
		iw := j*{{.SW}} - {{.PW}} + q
{{- if gt .PW 0}}
		if iw < 0 || iw >= {{.W}} {
			continue
		}
{{- end}}
		at := ih*{{.W}} + iw
		{{.Inner}}
	}
}
`

// unrolledWindow returns straight-line code for poolWindow when the pool
// has no padding and a small window: inner runs once per tap with at set.
func unrolledWindow(d map[string]any, inner string) (string, bool) {
	KH, KW, W := d["KH"].(int), d["KW"].(int), d["W"].(int)
	if d["PH"].(int) != 0 || d["PW"].(int) != 0 || KH*KW > 16 {
		return "", false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "base := %s*%d + %s\n", scaled("i", d["SH"].(int)), W, scaled("j", d["SW"].(int)))
	for p := range KH {
		for q := range KW {
			fmt.Fprintf(&b, "{\nat := base + %d\n%s\n}\n", p*W+q, inner)
		}
	}
	return b.String(), true
}

// window returns the code that runs inner for every real tap of window
// (i, j).
func window(d map[string]any, inner string) string {
	if s, ok := unrolledWindow(d, inner); ok {
		return s
	}
	d["Inner"] = inner
	return expand(poolWindow, d)
}

func emitPool(n *ir.Node, c *Context) (*Kernel, error) {
	d, err := poolData(n, n.Args[0].Shape)
	if err != nil {
		return nil, err
	}
	init, inner, fin := "best := float32(math.Inf(-1))", "if v := xc[at]; v > best {\n best = v\n}", "yc[i*{{.OW}}+j] = best"
	if n.Op == ir.OpAvgPool {
		init, inner, fin = "var sum float32", "sum += xc[at]", "yc[i*{{.OW}}+j] = sum * {{f32 .Inv}}"
	}
	window := window(d, inner)
	body := expand(`for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		xc := a0[(s*{{.C}}+ch)*{{mul .H .W}} : (s*{{.C}}+ch+1)*{{mul .H .W}}]
		yc := y[(s*{{.C}}+ch)*{{mul .OH .OW}} : (s*{{.C}}+ch+1)*{{mul .OH .OW}}]
		for i := 0; i < {{.OH}}; i++ {
			for j := 0; j < {{.OW}}; j++ {
				`+init+`
				`+window+`
				`+fin+`
			}
		}
	}
}
`, d)
	return &Kernel{
		Args:   []Arg{{"a0", 0}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitMaxPoolBackward(n *ir.Node, c *Context) (*Kernel, error) {
	d, err := poolData(n, n.Args[0].Shape)
	if err != nil {
		return nil, err
	}
	d["ReLU"] = n.Op == ir.OpMaxPoolReLUBackward
	window := window(d, "if v := xc[at]; v > best {\n best, arg = v, at\n}")
	body := expand(`for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		xc := x[(s*{{.C}}+ch)*{{mul .H .W}} : (s*{{.C}}+ch+1)*{{mul .H .W}}]
		dx := y[(s*{{.C}}+ch)*{{mul .H .W}} : (s*{{.C}}+ch+1)*{{mul .H .W}}]
		dc := dy[(s*{{.C}}+ch)*{{mul .OH .OW}} : (s*{{.C}}+ch+1)*{{mul .OH .OW}}]
		clear(dx)
		for i := 0; i < {{.OH}}; i++ {
			for j := 0; j < {{.OW}}; j++ {
				best, arg := float32(math.Inf(-1)), -1
				`+window+`
				if arg >= 0 {
					dx[arg] += dc[i*{{.OW}}+j]
				}
			}
		}
{{- if .ReLU}}
		elem.ReLUBackward(dx, xc, dx) // through the ReLU whose output x is
{{- end}}
	}
}
`, d)
	return &Kernel{
		Args:   []Arg{{"x", 0}, {"dy", 1}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}

func emitAvgPoolBackward(n *ir.Node, c *Context) (*Kernel, error) {
	d, err := poolData(n, n.Shape)
	if err != nil {
		return nil, err
	}
	window := window(d, "dx[at] += g")
	body := expand(`for s := lo; s < hi; s++ {
	for ch := 0; ch < {{.C}}; ch++ {
		dx := y[(s*{{.C}}+ch)*{{mul .H .W}} : (s*{{.C}}+ch+1)*{{mul .H .W}}]
		dc := dy[(s*{{.C}}+ch)*{{mul .OH .OW}} : (s*{{.C}}+ch+1)*{{mul .OH .OW}}]
		clear(dx)
		for i := 0; i < {{.OH}}; i++ {
			for j := 0; j < {{.OW}}; j++ {
				g := dc[i*{{.OW}}+j] * {{f32 .Inv}}
				`+window+`
			}
		}
	}
}
`, d)
	return &Kernel{
		Args:   []Arg{{"dy", 0}},
		Phases: []Phase{{Split: PerSample, Body: body}},
	}, nil
}
