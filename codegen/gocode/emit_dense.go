package gocode

import (
	"fmt"
	"strings"

	"github.com/cnnc/cnnc/ir"
)

// block is how many rows of a weight matrix the linear kernels process
// together, sharing each load of the input.
const block = 4

func linearDims(n *ir.Node) (F, O int, err error) {
	x, w := n.Args[0].Shape, n.Args[1].Shape
	if len(w) != 2 || len(x) != 2 {
		return 0, 0, fmt.Errorf("%v: shapes %v and %v, want [N, F] and [O, F]", n, x, w)
	}
	return w[1], w[0], nil
}

// rows returns "name0, name1, ... := expr(0), expr(1), ..." for k rows.
func rows(k int, name string, expr func(i int) string) string {
	var l, r []string
	for i := range k {
		l = append(l, fmt.Sprintf("%s%d", name, i))
		r = append(r, expr(i))
	}
	return strings.Join(l, ", ") + " := " + strings.Join(r, ", ")
}

// sumTerms returns "a0*b0[f] + a1*b1[f] + ..." for k terms.
func sumTerms(k int, format string) string {
	var t []string
	for i := range k {
		t = append(t, strings.ReplaceAll(format, "#", fmt.Sprint(i)))
	}
	return strings.Join(t, " + ")
}

func emitLinear(n *ir.Node, c *Context) (*Kernel, error) {
	F, O, err := linearDims(n)
	if err != nil {
		return nil, err
	}
	bias := len(n.Args) == 3
	// store applies the epilogue: the bias, then the ReLU of linear_relu.
	store := func(v string) string {
		if n.Op == ir.OpLinearReLU {
			return "max(" + v + ", 0)"
		}
		return v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "for s := lo; s < hi; s++ {\nxs := (*[%d]float32)(x[s*%d:])\nys := (*[%d]float32)(y[s*%d:])\n", F, F, O, O)
	emitRows := func(start, k int, loop bool) {
		o := "o"
		if loop {
			fmt.Fprintf(&b, "for o := %d; o < %d; o += %d {\n", start, start+(O-start)/k*k, k)
		} else {
			fmt.Fprintf(&b, "{\no := %d\n", start)
		}
		fmt.Fprintf(&b, "%s\n", rows(k, "w", func(i int) string { return fmt.Sprintf("(*[%d]float32)(w[(%s+%d)*%d:])", F, o, i, F) }))
		fmt.Fprintf(&b, "var %s float32\n", strings.Join(names("a", k), ", "))
		b.WriteString("for f, v := range xs {\n")
		for i := range k {
			fmt.Fprintf(&b, "a%d += v * w%d[f]\n", i, i)
		}
		b.WriteString("}\n")
		for i := range k {
			if bias {
				fmt.Fprintf(&b, "ys[o+%d] = %s\n", i, store(fmt.Sprintf("a%d + bias[o+%d]", i, i)))
			} else {
				fmt.Fprintf(&b, "ys[o+%d] = %s\n", i, store(fmt.Sprintf("a%d", i)))
			}
		}
		b.WriteString("}\n")
	}
	full := O / block * block
	if full > 0 {
		emitRows(0, block, true)
	}
	if O > full {
		emitRows(full, O-full, false)
	}
	b.WriteString("}\n")
	k := &Kernel{Args: []Arg{{"x", 0}, {"w", 1}}, Phases: []Phase{{Split: PerSample, Body: b.String()}}}
	if bias {
		k.Args = append(k.Args, Arg{"bias", 2})
	}
	return k, nil
}

func names(prefix string, k int) []string {
	var s []string
	for i := range k {
		s = append(s, fmt.Sprintf("%s%d", prefix, i))
	}
	return s
}

func emitLinearBackwardData(n *ir.Node, c *Context) (*Kernel, error) {
	w := n.Args[1].Shape
	O, F := w[0], w[1]
	var b strings.Builder
	fmt.Fprintf(&b, "for s := lo; s < hi; s++ {\ndx := (*[%d]float32)(y[s*%d:])\nds := (*[%d]float32)(dy[s*%d:])\nclear(dx[:])\n", F, F, O, O)
	emitRows := func(start, k int, loop bool) {
		if loop {
			fmt.Fprintf(&b, "for o := %d; o < %d; o += %d {\n", start, start+(O-start)/k*k, k)
		} else {
			fmt.Fprintf(&b, "{\no := %d\n", start)
		}
		fmt.Fprintf(&b, "%s\n", rows(k, "d", func(i int) string { return fmt.Sprintf("ds[o+%d]", i) }))
		fmt.Fprintf(&b, "%s\n", rows(k, "w", func(i int) string { return fmt.Sprintf("(*[%d]float32)(w[(o+%d)*%d:])", F, i, F) }))
		fmt.Fprintf(&b, "for f := range dx {\ndx[f] += %s\n}\n}\n", sumTerms(k, "d#*w#[f]"))
	}
	full := O / block * block
	if full > 0 {
		emitRows(0, block, true)
	}
	if O > full {
		emitRows(full, O-full, false)
	}
	b.WriteString("}\n")
	return &Kernel{Args: []Arg{{"dy", 0}, {"w", 1}}, Phases: []Phase{{Split: PerSample, Body: b.String()}}}, nil
}

func emitLinearBackwardWeight(n *ir.Node, c *Context) (*Kernel, error) {
	F, O := n.Args[0].Shape[1], n.Args[1].Shape[1]
	body := expand(`for o := lo; o < hi; o++ {
	dw := (*[{{.F}}]float32)(y[o*{{.F}}:])
	clear(dw[:])
	s := 0
	for ; s+{{.B}} <= n; s += {{.B}} {
		{{.Ds}}
		{{.Xs}}
		for f := range dw {
			dw[f] += {{.Sum}}
		}
	}
	for ; s < n; s++ {
		d := dy[s*{{.O}}+o]
		xs := (*[{{.F}}]float32)(x[s*{{.F}}:])
		for f := range dw {
			dw[f] += d * xs[f]
		}
	}
}
`, map[string]any{
		"F": F, "O": O, "B": block,
		"Ds":  rows(block, "d", func(i int) string { return fmt.Sprintf("dy[(s+%d)*%d+o]", i, O) }),
		"Xs":  rows(block, "x", func(i int) string { return fmt.Sprintf("(*[%d]float32)(x[(s+%d)*%d:])", F, i, F) }),
		"Sum": sumTerms(block, "d#*x#[f]"),
	})
	return &Kernel{Args: []Arg{{"x", 0}, {"dy", 1}}, Phases: []Phase{{Split: PerIndex, Count: O, Body: body}}}, nil
}

// convDims describes one convolution as a kernel sees it: CI input
// channels of HP x WP (padding already applied), CO output channels of
// OH x OW, G groups, KH x KW taps with strides SH, SW and dilations DH, DW.
type convDims struct {
	CI, CO, G, HP, WP, OH, OW, KH, KW, SH, SW, DH, DW int

	// Rows [PT, PT+RH) of the padded input are real; the others are zero
	// padding, which convCore skips. RH = 0 means every row is real.
	PT, RH int
}

func (d convDims) data() map[string]any {
	span := (d.OW-1)*d.SW + (d.KW-1)*d.DW + 1
	return map[string]any{
		"CI": d.CI, "CO": d.CO, "G": d.G, "CG": d.CI / d.G, "OG": d.CO / d.G,
		"HP": d.HP, "WP": d.WP, "HPWP": d.HP * d.WP, "OH": d.OH, "OW": d.OW, "OHW": d.OH * d.OW,
		"KH": d.KH, "KW": d.KW, "SH": d.SH, "SW": d.SW, "DH": d.DH, "DW": d.DW,
		"Span": span, "CGKK": d.CI / d.G * d.KH * d.KW,
		"Row": rowExpr(d),
	}
}

// rowExpr returns the index of the first element of input row i*SH+p*DH.
func rowExpr(d convDims) string {
	r := scaled("i", d.SH)
	if d.KH > 1 {
		r += "+" + scaled("p", d.DH)
	}
	return "(" + r + ")*" + fmt.Sprint(d.WP)
}

// tap returns the index of tap q in a row, for output column j.
func (d convDims) tap(q int) string {
	j := scaled("j", d.SW)
	if q == 0 {
		return j
	}
	return fmt.Sprintf("%s+%d", j, q*d.DW)
}

// convCore returns statements that compute one sample: ys [CO, OH, OW]
// from xs [CI, HP, WP] and weights w [CO, CI/G, KH, KW], plus bias[o] when
// bias is set. The sum over a row's taps is unrolled.
func convCore(d convDims, xs, w, ys, bias string) string {
	m := d.data()
	m["Xs"], m["W"], m["Ys"] = xs, w, ys
	m["Init"] = "float32(0)"
	if bias != "" {
		m["Init"] = bias + "[o]"
	}
	m["Ws"] = rows(d.KW, "w", func(q int) string { return fmt.Sprintf("wr[%d]", q) })
	var t []string
	for q := range d.KW {
		t = append(t, fmt.Sprintf("w%d*xr[%s]", q, d.tap(q)))
	}
	m["Taps"] = strings.Join(t, " + ")
	m["Skip"] = d.RH > 0 && (d.PT > 0 || d.PT+d.RH < d.HP)
	m["PT"], m["RH"] = d.PT, d.RH
	return expand(`for o := 0; o < {{.CO}}; o++ {
	yo := {{.Ys}}[o*{{.OHW}} : o*{{.OHW}}+{{.OHW}}]
	bv := {{.Init}}
	for i := range yo {
		yo[i] = bv
	}
{{- if eq .G 1}}
	const cbase = 0
{{- else}}
	cbase := o / {{.OG}} * {{.CG}}
{{- end}}
	for c := 0; c < {{.CG}}; c++ {
		xc := {{.Xs}}[(cbase+c)*{{.HPWP}} : (cbase+c)*{{.HPWP}}+{{.HPWP}}]
		for p := 0; p < {{.KH}}; p++ {
			wr := (*[{{.KW}}]float32)({{.W}}[((o*{{.CG}}+c)*{{.KH}}+p)*{{.KW}}:])
			{{.Ws}}
{{- if .Skip}}
			// Skip the output rows whose input row is zero padding.
			ilo, ihi := max(0, ({{.PT}}-p*{{.DH}}+{{sub .SH 1}})/{{.SH}}), min({{.OH}}, ({{add .PT .RH}}-1-p*{{.DH}})/{{.SH}}+1)
			for i := ilo; i < ihi; i++ {
{{- else}}
			for i := 0; i < {{.OH}}; i++ {
{{- end}}
				xr := (*[{{.Span}}]float32)(xc[{{.Row}}:])
				yr := (*[{{.OW}}]float32)(yo[i*{{.OW}}:])
				for j := range yr {
					yr[j] += {{.Taps}}
				}
			}
		}
	}
}
`, m)
}

// padCopy returns statements that copy sample s of src [C, H, W] into the
// interior of dst [C, H+2PH, W+2PW]. The border of dst is zero from New
// and never written.
func padCopy(src, dst string, C, H, W, PH, PW int) string {
	HP, WP := H+2*PH, W+2*PW
	return expand(`{
	src := {{.Src}}[s*{{.CHW}} : s*{{.CHW}}+{{.CHW}}]
	dst := {{.Dst}}[s*{{.CHPWP}} : s*{{.CHPWP}}+{{.CHPWP}}]
	for c := 0; c < {{.C}}; c++ {
		for h := 0; h < {{.H}}; h++ {
			copy(dst[(c*{{.HP}}+h+{{.PH}})*{{.WP}}+{{.PW}}:][:{{.W}}], src[(c*{{.H}}+h)*{{.W}}:][:{{.W}}])
		}
	}
}
`, map[string]any{"Src": src, "Dst": dst, "C": C, "H": H, "W": W, "PH": PH, "PW": PW, "HP": HP, "WP": WP,
		"CHW": C * H * W, "CHPWP": C * HP * WP})
}

// convShapes returns the input and weight shapes of a convolution node and
// its output-gradient shape, whatever the node's op.
func convShapes(n *ir.Node) (x, w, y ir.Shape) {
	switch n.Op {
	case ir.OpConv2D, ir.OpConv2DReLU:
		return n.Args[0].Shape, n.Args[1].Shape, n.Shape
	case ir.OpConv2DBackwardData:
		return n.Shape, n.Args[1].Shape, n.Args[0].Shape
	default: // OpConv2DBackwardFilter
		return n.Args[0].Shape, n.Shape, n.Args[1].Shape
	}
}

func emitConv2D(n *ir.Node, c *Context) (*Kernel, error) {
	x, w, y := convShapes(n)
	a := n.Attrs
	C, H, W := x[1], x[2], x[3]
	d := convDims{CI: C, CO: w[0], G: a.Groups, HP: H + 2*a.Pad[0], WP: W + 2*a.Pad[1], OH: y[2], OW: y[3],
		KH: w[2], KW: w[3], SH: a.Stride[0], SW: a.Stride[1], DH: a.Dilation[0], DW: a.Dilation[1],
		PT: a.Pad[0], RH: H}
	k := &Kernel{Args: []Arg{{"x", 0}, {"w", 1}}}
	bias := ""
	if len(n.Args) == 3 {
		k.Args = append(k.Args, Arg{"bias", 2})
		bias = "bias"
	}
	var b strings.Builder
	b.WriteString("for s := lo; s < hi; s++ {\n")
	in := fmt.Sprintf("x[s*%d : s*%d+%d]", C*H*W, C*H*W, C*H*W)
	if a.Pad != [2]int{} {
		k.Scratch = []Scratch{{Name: "xp", Size: c.Batch * C * d.HP * d.WP}}
		b.WriteString(padCopy("x", "xp", C, H, W, a.Pad[0], a.Pad[1]))
		in = fmt.Sprintf("xp[s*%d : s*%d+%d]", C*d.HP*d.WP, C*d.HP*d.WP, C*d.HP*d.WP)
	}
	out := d.CO * d.OH * d.OW
	fmt.Fprintf(&b, "xs := %s\nys := y[s*%d : s*%d+%d]\n", in, out, out, out)
	b.WriteString(convCore(d, "xs", "w", "ys", bias))
	if n.Op == ir.OpConv2DReLU {
		// The ReLU epilogue, while the sample's output is in cache.
		b.WriteString("for i, v := range ys {\nys[i] = max(v, 0)\n}\n")
	}
	b.WriteString("}\n")
	k.Phases = []Phase{{Split: PerSample, Body: b.String()}}
	return k, nil
}

// emitFoldBNWeight scales each output channel of a weight by
// gamma/sqrt(var+eps), in float64 as PyTorch folds.
func emitFoldBNWeight(n *ir.Node, c *Context) (*Kernel, error) {
	O := n.Shape[0]
	per := n.Shape.Size() / O
	body := fmt.Sprintf(`for o := range %d {
s := float64(gamma[o]) / math.Sqrt(float64(variance[o])+%v)
for i := o * %d; i < (o+1)*%d; i++ {
y[i] = float32(float64(w[i]) * s)
}
}
`, O, n.Attrs.Eps, per, per)
	return &Kernel{Args: []Arg{{"w", 0}, {"gamma", 1}, {"variance", 2}}, Phases: []Phase{{Split: Serial, Body: body}}}, nil
}

// emitFoldBNBias computes (b - mean)*gamma/sqrt(var+eps) + beta, with b
// = 0 when the layer has no bias.
func emitFoldBNBias(n *ir.Node, c *Context) (*Kernel, error) {
	k := &Kernel{Args: []Arg{{"gamma", 0}, {"beta", 1}, {"mean", 2}, {"variance", 3}}}
	b := "0.0"
	if len(n.Args) == 5 {
		k.Args = append(k.Args, Arg{"bias", 4})
		b = "float64(bias[o])"
	}
	body := fmt.Sprintf(`for o := range %d {
y[o] = float32((%s-float64(mean[o]))*float64(gamma[o])/math.Sqrt(float64(variance[o])+%v) + float64(beta[o]))
}
`, n.Shape[0], b, n.Attrs.Eps)
	k.Phases = []Phase{{Split: Serial, Body: body}}
	return k, nil
}

func emitConv2DBackwardFilter(n *ir.Node, c *Context) (*Kernel, error) {
	x, w, y := convShapes(n)
	a := n.Attrs
	C, H, W := x[1], x[2], x[3]
	d := convDims{CI: C, CO: w[0], G: a.Groups, HP: H + 2*a.Pad[0], WP: W + 2*a.Pad[1], OH: y[2], OW: y[3],
		KH: w[2], KW: w[3], SH: a.Stride[0], SW: a.Stride[1], DH: a.Dilation[0], DW: a.Dilation[1]}
	k := &Kernel{Args: []Arg{{"x", 0}, {"dy", 1}}}
	src := "x"
	if a.Pad != [2]int{} {
		src = "xp"
		k.Scratch = append(k.Scratch, Scratch{Name: "xp", Size: c.Batch * C * d.HP * d.WP})
		k.Phases = append(k.Phases, Phase{Name: "Pad", Split: PerSample,
			Body: "for s := lo; s < hi; s++ {\n" + padCopy("x", "xp", C, H, W, a.Pad[0], a.Pad[1]) + "}\n"})
	}
	m := d.data()
	k.Scratch = append(k.Scratch, Scratch{Name: "acc", Size: d.CO * m["CGKK"].(int), Float64: true})
	m["Src"] = src
	m["CHPWP"] = C * d.HP * d.WP
	m["Ts"] = strings.Join(names("t", d.KW), ", ")
	var acc, adds []string
	for q := range d.KW {
		acc = append(acc, fmt.Sprintf("t%d += dv * xr[%s]", q, d.tap(q)))
		adds = append(adds, fmt.Sprintf("a[%d] += float64(t%d)", q, q))
	}
	m["Acc"] = strings.Join(acc, "\n")
	m["Adds"] = strings.Join(adds, "\n")
	body := expand(`for o := lo; o < hi; o++ {
	accs := acc[o*{{.CGKK}} : o*{{.CGKK}}+{{.CGKK}}]
	clear(accs)
{{- if eq .G 1}}
	const cbase = 0
{{- else}}
	cbase := o / {{.OG}} * {{.CG}}
{{- end}}
	for s := 0; s < n; s++ {
		dyo := dy[(s*{{.CO}}+o)*{{.OHW}} : (s*{{.CO}}+o)*{{.OHW}}+{{.OHW}}]
		for c := 0; c < {{.CG}}; c++ {
			xc := {{.Src}}[s*{{.CHPWP}}+(cbase+c)*{{.HPWP}} : s*{{.CHPWP}}+(cbase+c)*{{.HPWP}}+{{.HPWP}}]
			for p := 0; p < {{.KH}}; p++ {
				var {{.Ts}} float32
				for i := 0; i < {{.OH}}; i++ {
					xr := (*[{{.Span}}]float32)(xc[{{.Row}}:])
					dr := (*[{{.OW}}]float32)(dyo[i*{{.OW}}:])
					for j, dv := range dr {
						{{.Acc}}
					}
				}
				a := (*[{{.KW}}]float64)(accs[(c*{{.KH}}+p)*{{.KW}}:])
				{{.Adds}}
			}
		}
	}
	dw := y[o*{{.CGKK}} : o*{{.CGKK}}+{{.CGKK}}]
	for i, v := range accs {
		dw[i] = float32(v)
	}
}
`, m)
	k.Phases = append(k.Phases, Phase{Split: PerIndex, Count: d.CO, Body: body})
	return k, nil
}

func emitConv2DBackwardData(n *ir.Node, c *Context) (*Kernel, error) {
	x, w, y := convShapes(n)
	a := n.Attrs
	C, H, W := x[1], x[2], x[3]
	O, KH, KW := w[0], w[2], w[3]
	G := a.Groups
	CG, OG := C/G, O/G
	OH, OW := y[2], y[3]
	HP, WP := H+2*a.Pad[0], W+2*a.Pad[1]
	KK, OHW := KH*KW, OH*OW
	// For each input channel c of a sample, col[p*KW+q, :] = sum over the
	// group's output channels o of w[o, c, p, q] * dy[o, :] (a small GEMM
	// with the output channels blocked by 4 and the OH*OW pixels innermost),
	// then col is added into dx at the taps' positions (col2im).
	k := &Kernel{Args: []Arg{{"dy", 0}, {"w", 1}}}
	k.Scratch = append(k.Scratch, Scratch{Name: "col", Size: c.Batch * KK * OHW})
	padded := a.Pad != [2]int{}
	if padded {
		k.Scratch = append(k.Scratch, Scratch{Name: "dxp", Size: c.Batch * C * HP * WP})
	}
	m := map[string]any{
		"C": C, "H": H, "W": W, "CG": CG, "OG": OG, "G": G, "O": O, "KH": KH, "KW": KW, "KK": KK,
		"OH": OH, "OW": OW, "OHW": OHW, "HP": HP, "WP": WP, "HPWP": HP * WP, "CHW": C * H * W,
		"CHPWP": C * HP * WP, "PH": a.Pad[0], "PW": a.Pad[1], "CGKK": CG * KK, "B": block,
		"Padded": padded, "Blocked": OG >= block,
		"Ds":  rows(block, "d", func(i int) string { return fmt.Sprintf("(*[%d]float32)(dys[(o+%d)*%d:])", OHW, i, OHW) }),
		"Ws":  rows(block, "w", func(i int) string { return fmt.Sprintf("w[(o+%d)*%d+cl*%d+r]", i, CG*KK, KK) }),
		"Sum": sumTerms(block, "w#*d#[j]"),
		"Row": rowExpr(convDims{SH: a.Stride[0], DH: a.Dilation[0], KH: KH, WP: WP}),
		"Col": scaled("j", a.Stride[1]), "QD": scaled("q", a.Dilation[1]),
	}
	body := expand(`for s := lo; s < hi; s++ {
	dys := dy[s*{{mul .O .OHW}} : s*{{mul .O .OHW}}+{{mul .O .OHW}}]
	col := cols[s*{{mul .KK .OHW}} : s*{{mul .KK .OHW}}+{{mul .KK .OHW}}]
{{- if .Padded}}
	dxs := dxp[s*{{.CHPWP}} : s*{{.CHPWP}}+{{.CHPWP}}]
{{- else}}
	dxs := y[s*{{.CHW}} : s*{{.CHW}}+{{.CHW}}]
{{- end}}
	for c := 0; c < {{.C}}; c++ {
{{- if eq .G 1}}
		const obase = 0
		cl := c
{{- else}}
		obase, cl := c/{{.CG}}*{{.OG}}, c%{{.CG}}
{{- end}}
		clear(col)
		o := obase
{{- if .Blocked}}
		for ; o+{{.B}} <= obase+{{.OG}}; o += {{.B}} {
			{{.Ds}}
			for r := 0; r < {{.KK}}; r++ {
				{{.Ws}}
				colr := (*[{{.OHW}}]float32)(col[r*{{.OHW}}:])
				for j := range colr {
					colr[j] += {{.Sum}}
				}
			}
		}
{{- end}}
		for ; o < obase+{{.OG}}; o++ {
			d0 := (*[{{.OHW}}]float32)(dys[o*{{.OHW}}:])
			for r := 0; r < {{.KK}}; r++ {
				w0 := w[o*{{.CGKK}}+cl*{{.KK}}+r]
				colr := (*[{{.OHW}}]float32)(col[r*{{.OHW}}:])
				for j := range colr {
					colr[j] += w0 * d0[j]
				}
			}
		}
		xc := dxs[c*{{.HPWP}} : c*{{.HPWP}}+{{.HPWP}}]
		clear(xc)
		for p := 0; p < {{.KH}}; p++ {
			for q := 0; q < {{.KW}}; q++ {
				colr := col[(p*{{.KW}}+q)*{{.OHW}}:][:{{.OHW}}]
				for i := 0; i < {{.OH}}; i++ {
					xr := xc[{{.Row}}+{{.QD}}:]
					cr := colr[i*{{.OW}} : i*{{.OW}}+{{.OW}}]
					for j, v := range cr {
						xr[{{.Col}}] += v
					}
				}
			}
		}
	}
{{- if .Padded}}
	dx := y[s*{{.CHW}} : s*{{.CHW}}+{{.CHW}}]
	for c := 0; c < {{.C}}; c++ {
		for h := 0; h < {{.H}}; h++ {
			copy(dx[(c*{{.H}}+h)*{{.W}}:][:{{.W}}], dxs[(c*{{.HP}}+h+{{.PH}})*{{.WP}}+{{.PW}}:][:{{.W}}])
		}
	}
{{- end}}
}
`, m)
	k.Scratch[0].Name = "cols"
	k.Phases = append(k.Phases, Phase{Split: PerSample, Body: body})
	return k, nil
}
