package gocode

import (
	"fmt"
	"strings"

	"github.com/cnnc/cnnc/codegen/asm"
	"github.com/cnnc/cnnc/ir"
)

// The dense layers (convolution and linear, forward and backward) are
// lowered to runtime/gemm's packed AVX2/FMA GEMM:
//
//	conv forward     y_s[g] = W[g] x col_s[g]            col = im2col(x_s), K = C/G*KH*KW
//	conv back data   dcol = W[g]^T x dy_s[g]; dx_s = col2im(dcol)
//	conv back filter dW[g] = sum over s of dy_s[g] x col_s[g]^T
//	linear forward   Y = X W^T                            one GEMM over the batch
//	linear back data dX = dY W
//	linear back wt   dW = dY^T X                          K = n, the batch
//
// Bias and ReLU are the GEMM's epilogue (gemm.SgemmEpi), applied to each
// micro-tile while it is in registers; after the matrix-vector products
// of a small batch, gemm.BiasReLU applies them. A 1x1 convolution with stride 1 and
// no padding needs no im2col: col is the input itself.
//
// Parallelism is chosen by shape at generation time:
//
//   - Convolutions split the batch into at most maxSlots slots (Split
//     PerSlot) and run serial GEMMs per sample inside a slot: at training
//     batch sizes there are many samples for few workers, each GEMM is
//     small, and a slot keeps its own im2col buffer. The weight gradient is
//     summed per slot (samples in order) into a partial, and the partials
//     are added in slot order; slots depend on n only, so the bits do not
//     depend on the number of workers.
//   - When the graph's batch is 1 (a latency build) there is one slot, and
//     a convolution whose GEMM does at least parallelFlops uses
//     gemm.SgemmPar over the pool; smaller ones stay serial, where waking
//     the pool would cost more than it saves.
//   - Linear layers are one GEMM over the whole batch, split by
//     gemm.SgemmPar when it does at least parallelFlops at full batch, and
//     serial otherwise. SgemmPar computes each element of C on one worker
//     in a fixed order, so the weight gradient's sum over the batch (K = n)
//     is deterministic too. Below gemvMax samples the forward product is
//     one matrix-vector product per sample (gemm.GemvPar), split by the
//     weight's rows where the weight has at least gemvParallelFloats. A
//     weight that may lie as column panels (see panels.go) goes through
//     gemm's Linear functions instead, which take either layout.

// maxSlots is the most slots a convolution splits a batch into. More slots
// than workers balance the load; each slot costs an im2col buffer.
const maxSlots = 8

// gemvMax is the batch from which a linear layer's forward pass is one
// GEMM rather than a matrix-vector product per sample.
const gemvMax = 4

// gemvParallelFloats is the smallest weight, in floats, whose
// matrix-vector products gemm.GemvPar shares among the workers: 512 KiB,
// a core's L2. A smaller weight stays in L2 from one call to the next and
// one core multiplies it in a few microseconds; a larger one comes from
// L3, at the rate a core fetches it, and two cores fetch it about twice as
// fast. Measured (runtime/gemm's BenchmarkGemvPar): LeNet-5's 120x400
// took 2.6 us on one worker and 3.1 us on two; the MLP's ten 500x500, one
// after another, 232 us and 109 us.
const gemvParallelFloats = 1 << 17

// parallelFlops is the smallest GEMM, in floating-point operations, worth
// splitting over the pool: below about 1 MFLOP (some 10 us on one core) the
// hand-off and the smaller tiles cost more than the second core saves.
const parallelFlops = 1 << 20

func linearDims(n *ir.Node) (F, O int, err error) {
	x, w := n.Args[0].Shape, n.Args[1].Shape
	if len(w) != 2 || len(x) != 2 {
		return 0, 0, fmt.Errorf("%v: shapes %v and %v, want [N, F] and [O, F]", n, x, w)
	}
	return w[1], w[0], nil
}

// gemmPool returns the kernel's pool expression for a GEMM of flops at
// full batch, setting k.Pool when the GEMM is worth splitting.
func gemmPool(k *Kernel, flops int) string {
	if flops >= parallelFlops {
		k.Pool = true
		return "pool"
	}
	return "nil"
}

// emitLinear computes y = x W^T (+ bias) (then ReLU or tanh): one GEMM
// with M = n samples, N = O outputs, K = F features; the weight [O, F] is
// op(B) transposed.
func emitLinear(n *ir.Node, c *Context) (*Kernel, error) {
	F, O, err := linearDims(n)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Args: []Arg{{"x", 0}, {"w", 1}}}
	bias := "nil"
	if len(n.Args) == 3 {
		k.Args = append(k.Args, Arg{"bias", 2})
		bias = "bias"
	}
	// A few samples are matrix-vector products, which read the weight in
	// place; a GEMM would pack all of it first.
	gemvPool := "nil"
	if O*F >= gemvParallelFloats {
		k.Pool = true
		gemvPool = "pool"
	}
	// A weight that may lie as column panels goes through gemm's Linear
	// functions, which take it as gemm.WeightPanels lays it out.
	panels := c.panelWeight(n.Args[1])
	gemv := fmt.Sprintf("gemm.GemvPar(%s, n, %d, %d, w, %d, x, %d, y, %d)\n", gemvPool, O, F, F, F, O)
	if panels {
		gemv = fmt.Sprintf("gemm.LinearGemv(%s, n, %d, %d, w, x, %d, y, %d)\n", gemvPool, O, F, F, O)
	}
	relu, tanh := n.Op == ir.OpLinearReLU, n.Op == ir.OpLinearTanh
	if bias != "nil" || relu {
		gemv += fmt.Sprintf("gemm.BiasReLU(n, %d, y, %d, nil, %s, %v)\n", O, O, bias, relu)
	}
	if tanh {
		gemv += fmt.Sprintf("elem.Tanh(y[:n*%d], y[:n*%d])\n", O, O)
	}
	var body string
	if c.Batch < gemvMax {
		body = gemv
	} else {
		// The GEMM applies the bias and activation to each tile while it
		// is in registers or in L1.
		pool := gemmPool(k, 2*c.Batch*O*F)
		act := fmt.Sprintf(", ReLU: %v", relu)
		if tanh {
			act = ", Tanh: true"
		}
		// A linear layer next to another takes its input, or hands its
		// output on, already packed (see Kernel.Handoff).
		k.Handoff = true
		product := fmt.Sprintf("gemm.SgemmHandoff(%s, n, %d, %d, x, %d, w, %d, y, %d, gemm.Epilogue{ColBias: %s%s}, from, to)", pool, O, F, F, F, O, bias, act)
		if panels {
			product = fmt.Sprintf("gemm.LinearForward(%s, n, %d, %d, x, %d, w, y, %d, gemm.Epilogue{ColBias: %s%s}, from, to)", pool, O, F, F, O, bias, act)
		}
		body = fmt.Sprintf("if n < %d {\n%s} else {\n%s\n}\n", gemvMax, gemv, product)
	}
	k.Phases = []Phase{{Split: Serial, Body: body}}
	return k, nil
}

// emitLinearBackwardData computes dx = dy W: M = n, N = F, K = O.
func emitLinearBackwardData(n *ir.Node, c *Context) (*Kernel, error) {
	w := n.Args[1].Shape
	O, F := w[0], w[1]
	k := &Kernel{Args: []Arg{{"dy", 0}, {"w", 1}}}
	pool := gemmPool(k, 2*c.Batch*O*F)
	body := fmt.Sprintf("gemm.SgemmPar(%s, false, false, n, %d, %d, dy, %d, w, %d, y, %d, false)\n", pool, F, O, O, F, F)
	if c.panelWeight(n.Args[1]) {
		body = fmt.Sprintf("gemm.LinearBackwardData(%s, n, %d, %d, dy, %d, w, y, %d)\n", pool, O, F, O, F)
	}
	k.Phases = []Phase{{Split: Serial, Body: body}}
	return k, nil
}

// emitLinearBackwardWeight computes dW = dy^T x: M = O, N = F, K = n, the
// reduction over the batch done inside the GEMM in sample order. It hands
// the rows of dW to the optimiser as they are done, where the model's
// gradient hook takes them (see Kernel.RowCols).
func emitLinearBackwardWeight(n *ir.Node, c *Context) (*Kernel, error) {
	F, O := n.Args[0].Shape[1], n.Args[1].Shape[1]
	k := &Kernel{Args: []Arg{{"x", 0}, {"dy", 1}}, RowCols: F}
	pool := gemmPool(k, 2*c.Batch*O*F)
	body := fmt.Sprintf("gemm.SgemmRows(%s, true, false, %d, %d, n, dy, %d, x, %d, y, %d, false, rows)\n", pool, O, F, O, F, F)
	if c.panelGrad(n) {
		body = fmt.Sprintf("gemm.LinearBackwardWeight(%s, n, %d, %d, dy, %d, x, %d, y, rows)\n", pool, O, F, O, F)
	}
	k.Phases = []Phase{{Split: Serial, Body: body}}
	return k, nil
}

// convGeom is one convolution as its kernels see it: C input channels of
// H x W, O output channels of OH x OW, G groups, KH x KW taps with strides
// SH, SW, dilations DH, DW and padding PH, PW on each side.
type convGeom struct {
	C, H, W, O, OH, OW, G, KH, KW, SH, SW, DH, DW, PH, PW int
}

func newConvGeom(n *ir.Node) convGeom {
	x, w, y := convShapes(n)
	a := n.Attrs
	return convGeom{C: x[1], H: x[2], W: x[3], O: w[0], OH: y[2], OW: y[3], G: a.Groups,
		KH: w[2], KW: w[3], SH: a.Stride[0], SW: a.Stride[1], DH: a.Dilation[0], DW: a.Dilation[1],
		PH: a.Pad[0], PW: a.Pad[1]}
}

func (d convGeom) data() map[string]any {
	CG, OG := d.C/d.G, d.O/d.G
	KK, OHW, HW := d.KH*d.KW, d.OH*d.OW, d.H*d.W
	return map[string]any{
		"C": d.C, "H": d.H, "W": d.W, "O": d.O, "OH": d.OH, "OW": d.OW, "G": d.G,
		"KH": d.KH, "KW": d.KW, "SH": d.SH, "SW": d.SW, "DH": d.DH, "DW": d.DW, "PH": d.PH, "PW": d.PW,
		"CG": CG, "OG": OG, "KK": KK, "OHW": OHW, "HW": HW, "CGKK": CG * KK,
		"CHW": d.C * HW, "OOHW": d.O * OHW, "OGOHW": OG * OHW, "CGHW": CG * HW,
		"OCGKK": d.O * CG * KK, "OGCGKK": OG * CG * KK, "ColSize": CG * KK * OHW,
		"Direct": d.direct(), "Grouped": d.G > 1,
	}
}

// direct reports whether the convolution is a plain matrix product of the
// weight and the input (1x1, stride 1, no padding): col is the input.
func (d convGeom) direct() bool {
	return d.KH == 1 && d.KW == 1 && d.SH == 1 && d.SW == 1 && d.PH == 0 && d.PW == 0
}

// implicit reports whether the forward GEMM reads the sample through
// gemm.SgemmIm2col rather than an im2col buffer: at stride 1 each panel of
// B is a few runs of floats of the sample, which the GEMM packs directly,
// saving im2col's copy of KH*KW times the input.
func (d convGeom) implicit() bool {
	return !d.direct() && d.SW == 1
}

// implicitT reports whether the weight gradient's GEMM reads the sample
// through gemm.SgemmIm2colT rather than an im2col buffer: at stride 1 the
// GEMM transposes the runs of each output row straight from the sample,
// saving im2col's copy of KH*KW times the input.
func (d convGeom) implicitT() bool {
	return !d.direct() && d.SW == 1
}

// implicitBT reports whether the weight gradient's GEMM is the transposed
// product of gemm.SgemmIm2colBT, which packs the output gradient (OG rows
// a group) where SgemmIm2colT packs the im2col matrix (CG*KH*KW rows): at
// stride 1, when the first has fewer rows and fills the micro-kernels'
// 16 lanes.
func (d convGeom) implicitBT() bool {
	OG := d.O / d.G
	return d.implicitT() && OG >= asm.NR && OG < d.C/d.G*d.KH*d.KW
}

// implicitTDot reports whether the weight gradient's products are
// gemm.SgemmIm2colTDot's dot products, for fewer output channels than a
// micro-kernel's 16 lanes at stride 1, where SgemmIm2colBT would waste
// lanes and SgemmIm2colT packs a matrix KH*KW times the input for a few
// rows of products; with S slots, each slot's products run on one worker.
func (d convGeom) implicitTDot(S int) bool {
	return d.implicitT() && d.SH == 1 && d.O/d.G < asm.NR && S > 1
}

// pixelMajor reports whether the forward GEMM runs as its transpose,
// gemm.SgemmIm2colPix, whose micro-kernel tiles are 6 output pixels by 16
// output channels, rather than 6 channels by 16 pixels: where that takes
// fewer tile rows of k steps, counting its transposed store as a row per
// 72 outputs (measured: 1.1 us of the 7.3 us of LeNet-5's second
// convolution, whose 17 tiles of 6 of its 100 pixels replace 3 row panels
// of its 16 channels by 9 panels of 16 of the 140 columns that the
// runtime's SgemmIm2col computes for an output 10 wide, one of 14 input
// columns a row; 10.3 us with the weight packed). The first convolution,
// 6 channels of 28x28, keeps its channels as rows: 16 lanes of 6
// channels would waste most of each tile. The VGG-style net's keep
// theirs too: their output rows of 32 and 16 pixels fill whole panels
// (pixel-major, 64 channels of 16x16 took 168 us a sample, against
// 125-148).
func (d convGeom) pixelMajor() bool {
	if !d.implicit() {
		return false
	}
	OG, OHW := d.O/d.G, d.OH*d.OW
	cols := OHW
	if WP := d.W + 2*d.PW; d.OW%asm.NR != 0 && d.OW < WP {
		cols = d.OH * WP // computed across the input's width (gemm's widen)
	}
	rows := ceilDiv(OG, asm.MR) * asm.MR * ceilDiv(cols, asm.NR)
	pix := ceilDiv(OHW, asm.MR)*asm.MR*ceilDiv(OG, asm.NR) + OG*OHW/72
	return pix < rows
}

// flops is the work of one sample's GEMMs.
func (d convGeom) flops() int {
	return 2 * d.O * (d.C / d.G) * d.KH * d.KW * d.OH * d.OW
}

// slots returns how many slots the batch is split into.
func slots(c *Context) int { return min(c.Batch, maxSlots) }

// padded reports whether the convolution reads a zero-padded copy of its
// input (or, backward, accumulates into a padded input gradient).
func (d convGeom) padded() bool { return d.PH != 0 || d.PW != 0 }

// padData adds the padded geometry to a template's data: HP x WP planes,
// the span of input a strided output row reads, and Pad, the statements
// that copy the sample xs [C, H, W] into the interior of xp [C, HP, WP]
// (whose border is zero from New and never written).
func (d convGeom) padData(m map[string]any) {
	HP, WP := d.H+2*d.PH, d.W+2*d.PW
	m["HP"], m["WP"], m["HPWP"], m["CHPWP"] = HP, WP, HP*WP, d.C*HP*WP
	m["Span"] = (d.OW-1)*d.SW + 1
	m["RowStep"] = d.SH * WP
	m["Base"] = fmt.Sprintf("%s + %s", scaled("p", d.DH*WP), scaled("q", d.DW))
	m["Padded"] = d.padded()
	m["Pad"] = expand(`for c := 0; c < {{.C}}; c++ {
	gemm.CopyRows(xp[(c*{{.HP}}+{{.PH}})*{{.WP}}+{{.PW}}:], xs[c*{{.H}}*{{.W}}:], {{.H}}, {{.W}}, {{.WP}}, {{.W}})
}
`, m)
}

// im2col returns statements that fill col [CG*KH*KW, OH*OW] from the
// channels of group g of src [C, HP, WP], the sample as padded:
// col[(c*KH+p)*KW+q, i*OW+j] = src[g*CG+c, i*SH+p*DH, j*SW+q*DW]. With
// stride 1 each tap copies OH rows of OW floats with gemm.CopyRows;
// otherwise each row is a gather with a stride.
func im2col(d convGeom, src string) string {
	m := d.data()
	d.padData(m)
	m["Src"] = src
	return expand(`for c := 0; c < {{.CG}}; c++ {
	xc := {{.Src}}[(g*{{.CG}}+c)*{{.HPWP}}:][:{{.HPWP}}]
	for p := 0; p < {{.KH}}; p++ {
		for q := 0; q < {{.KW}}; q++ {
			row := col[((c*{{.KH}}+p)*{{.KW}}+q)*{{.OHW}}:][:{{.OHW}}]
			base := {{.Base}}
{{- if eq .SW 1}}
			gemm.CopyRows(row, xc[base:], {{.OH}}, {{.OW}}, {{.OW}}, {{.RowStep}})
{{- else}}
			for i := 0; i < {{.OH}}; i++ {
				r := (*[{{.OW}}]float32)(row[i*{{.OW}}:])
				xr := (*[{{.Span}}]float32)(xc[base+i*{{.RowStep}}:])
				for j := range r {
					r[j] = xr[j*{{.SW}}]
				}
			}
{{- end}}
		}
	}
}
`, m)
}

// col2im returns the statement that writes the channels of group g of
// dst [C, H, W] (the input gradient) from col [CG*KH*KW, OH*OW], the
// reverse of im2col: gemm.Col2im, which sums each element's entries in
// tap order and clips the padding away.
func col2im(d convGeom, dst string) string {
	m := d.data()
	m["Dst"] = dst
	return expand(`gemm.Col2im({{.Dst}}[g*{{.CGHW}}:][:{{.CGHW}}], col, gemm.Col2imShape{C: {{.CG}}, H: {{.H}}, W: {{.W}}, KH: {{.KH}}, KW: {{.KW}}, SH: {{.SH}}, SW: {{.SW}}, DH: {{.DH}}, DW: {{.DW}}, PH: {{.PH}}, PW: {{.PW}}, OH: {{.OH}}, OW: {{.OW}}})
`, m)
}

// convShapes returns the input and weight shapes of a convolution node and
// its output-gradient shape, whatever the node's op.
func convShapes(n *ir.Node) (x, w, y ir.Shape) {
	switch n.Op {
	case ir.OpConv2D, ir.OpConv2DReLU, ir.OpConv2DTanh, ir.OpConv2DBNReLU:
		return n.Args[0].Shape, n.Args[1].Shape, n.Shape
	case ir.OpConv2DBNReLUBackward:
		return n.Args[0].Shape, n.Args[1].Shape, n.Args[3].Shape
	case ir.OpConv2DBackwardData:
		return n.Shape, n.Args[1].Shape, n.Args[0].Shape
	default: // OpConv2DBackwardFilter
		return n.Args[0].Shape, n.Shape, n.Args[1].Shape
	}
}

// slotLoop wraps per-sample statements in the loop over the slots [lo, hi)
// of a PerSlot phase; the statements see s, the sample, and slot.
func slotLoop(S int, pre, body string) string {
	return expand(`ns := min(n, {{.S}})
for slot := lo; slot < hi; slot++ {
	{{.Pre}}
	for s := slot * n / ns; s < (slot+1)*n/ns; s++ {
		{{.Body}}
	}
}
`, map[string]any{"S": S, "Pre": pre, "Body": body})
}

// groupLoop wraps statements in a loop over the groups g, or binds g = 0.
func groupLoop(G int, body string) string {
	if G == 1 {
		return "{\nconst g = 0\n" + body + "}\n"
	}
	return fmt.Sprintf("for g := 0; g < %d; g++ {\n%s}\n", G, body)
}

// colInput sets up how a kernel that reads the input x gets each group's
// col: it adds the scratch (per slot: the im2col buffer, and the padded
// copy of the sample when the convolution pads) and returns the slot's
// statements, the sample's statements (after xs is set) and the group's
// statements (which set col).
func (d convGeom) colInput(k *Kernel, S int, m map[string]any) (slot, sample, group string) {
	if d.direct() {
		return "", "", expand("col := xs[g*{{.CGHW}}:][:{{.CGHW}}]\n", m)
	}
	d.padData(m)
	addScratch(k, Scratch{Name: "cols", Size: S * m["ColSize"].(int)})
	slot = expand("col := cols[slot*{{.ColSize}}:][:{{.ColSize}}]\n", m)
	src := "xs"
	if d.padded() {
		addScratch(k, Scratch{Name: "xps", Size: S * m["CHPWP"].(int)})
		slot += expand("xp := xps[slot*{{.CHPWP}}:][:{{.CHPWP}}]\n", m)
		sample = m["Pad"].(string)
		src = "xp"
	}
	return slot, sample, im2col(d, src)
}

// implicitInput sets up how a kernel whose GEMMs read the input x through
// gemm.Im2col gets each group's matrix: it adds the scratch (per slot, the
// padded copy of the sample when the convolution pads), sets m's "Im2col"
// to the expression of group g's gemm.Im2col, and returns the slot's
// statements and the sample's statements (after xs is set).
func (d convGeom) implicitInput(k *Kernel, S int, m map[string]any) (slot, sample string) {
	src := "xs"
	d.padData(m)
	if d.padded() {
		addScratch(k, Scratch{Name: "xps", Size: S * m["CHPWP"].(int)})
		slot = expand("xp := xps[slot*{{.CHPWP}}:][:{{.CHPWP}}]\n", m)
		sample, src = m["Pad"].(string), "xp"
	}
	m["Src"], m["CGHPWP"] = src, d.C/d.G*m["HPWP"].(int)
	m["Im2col"] = expand("gemm.Im2col{X: {{.Src}}[g*{{.CGHPWP}}:][:{{.CGHPWP}}], C: {{.CG}}, H: {{.HP}}, W: {{.WP}}, KH: {{.KH}}, KW: {{.KW}}, SH: {{.SH}}, SW: {{.SW}}, DH: {{.DH}}, DW: {{.DW}}, OH: {{.OH}}, OW: {{.OW}}}", m)
	return slot, sample
}

// emitConv2D computes a convolution (with the ReLU of conv2d_relu or the
// tanh of conv2d_tanh): per sample and group, y[g] = W[g] [OG, CG*KH*KW]
// x col [CG*KH*KW, OH*OW], then bias and activation on the sample's
// output.
func emitConv2D(n *ir.Node, c *Context) (*Kernel, error) {
	d := newConvGeom(n)
	k := &Kernel{Args: []Arg{{"x", 0}, {"w", 1}}}
	var ep []string
	if len(n.Args) == 3 {
		k.Args = append(k.Args, Arg{"bias", 2})
		ep = append(ep, fmt.Sprintf("RowBias: bias[g*%d:]", d.O/d.G))
	}
	switch n.Op {
	case ir.OpConv2DReLU:
		ep = append(ep, "ReLU: true")
	case ir.OpConv2DTanh:
		ep = append(ep, "Tanh: true")
	}
	k.Phases = d.forward(k, c, "y", "", "", strings.Join(ep, ", "))
	return k, nil
}

// forward returns the phases that compute the convolution of the
// kernel's argument x with w into out, adding its scratch to k: the first
// packs each group's weight once for the batch (packWeight), the second
// multiplies it by each sample; a product that runs pixel-major packs the
// weight itself and has only the second (see pixelMajor). Each slot runs
// pre first; after each sample's GEMMs it runs after, which sees the
// sample's output as ys. A non-empty epilogue is the fields of the
// gemm.Epilogue that each group's GEMM applies, which may name g.
func (d convGeom) forward(k *Kernel, c *Context, out, pre, after, epilogue string) []Phase {
	m := d.data()
	S := slots(c)
	m["Pool"] = "nil"
	if S == 1 {
		m["Pool"] = gemmPool(k, d.flops())
	}
	m["Out"], m["Epilogue"] = out, epilogue
	var phases []Phase
	pix := d.pixelMajor()
	if !pix {
		phases = append(phases, d.packWeight(k, m, false, d.O/d.G, d.C/d.G*d.KH*d.KW))
	}
	var slot, sample, gb string
	switch {
	case pix:
		// The GEMM reads the taps of its tiles' pixels from the sample
		// and packs the weight itself, as the B panels of the transpose.
		slot, sample = d.implicitInput(k, S, m)
		gb = expand(`gemm.SgemmIm2colPix({{.Pool}}, {{.OG}}, w[g*{{.OGCGKK}}:][:{{.OGCGKK}}], {{.CGKK}}, {{.Im2col}}, ys[g*{{.OGOHW}}:], {{.OHW}}, false, gemm.Epilogue{ {{- .Epilogue -}} })
`, m)
	case d.implicit():
		// The GEMM packs its B panels straight from the (padded) sample.
		slot, sample = d.implicitInput(k, S, m)
		gb = expand(`gemm.SgemmIm2colPacked({{.Pool}}, {{.OG}}, {{.PackedW}}, {{.Im2col}}, ys[g*{{.OGOHW}}:], {{.OHW}}, false, gemm.Epilogue{ {{- .Epilogue -}} })
`, m)
	default:
		var group string
		slot, sample, group = d.colInput(k, S, m)
		gb = group + expand(`gemm.SgemmPacked({{.Pool}}, {{.OG}}, {{.OHW}}, {{.CGKK}}, {{.PackedW}}, col, {{.OHW}}, ys[g*{{.OGOHW}}:], {{.OHW}}, false, gemm.Epilogue{ {{- .Epilogue -}} })
`, m)
	}
	body := expand(`xs := x[s*{{.CHW}}:][:{{.CHW}}]
ys := {{.Out}}[s*{{.OOHW}}:][:{{.OOHW}}]
`, m) + sample + groupLoop(d.G, gb) + after
	return append(phases, Phase{Split: PerSlot, Count: S, Body: slotLoop(S, slot+pre, body)})
}

// packWeight returns the phase that packs each group's rows x cols matrix
// of the weight w (its transpose, stored cols x rows, when trans) with
// gemm.PackA into the scratch wp, once for every sample's GEMM, and sets
// m's "PackedW" to group g's packed matrix.
func (d convGeom) packWeight(k *Kernel, m map[string]any, trans bool, rows, cols int) Phase {
	size := ceilDiv(rows, asm.MR) * asm.MR * cols
	addScratch(k, Scratch{Name: "wp", Size: d.G * size})
	m["PackedW"] = fmt.Sprintf("wp[g*%d:][:%d]", size, size)
	ld := cols
	if trans {
		ld = rows
	}
	body := groupLoop(d.G, fmt.Sprintf("gemm.PackA(%s, %v, %d, %d, w[g*%d:], %d)\n", m["PackedW"], trans, rows, cols, rows*cols, ld))
	return Phase{Name: "Pack", Split: Serial, Body: body}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// emitConv2DBackwardData computes the input gradient.
func emitConv2DBackwardData(n *ir.Node, c *Context) (*Kernel, error) {
	k := &Kernel{Args: []Arg{{"dy", 0}, {"w", 1}}}
	k.Phases = newConvGeom(n).backwardData(k, c, "dy", "y")
	return k, nil
}

// backwardData returns the phases that compute the input gradient out
// from the output gradient dy and the kernel's argument w: the first packs
// each group's W[g]^T once for the batch, the second computes, per sample
// and group, dcol = W[g]^T x dy[g], summed into dx by col2im; a 1x1
// convolution writes W[g]^T x dy[g] straight into dx.
func (d convGeom) backwardData(k *Kernel, c *Context, dy, out string) []Phase {
	m := d.data()
	S := slots(c)
	m["Pool"] = "nil"
	if S == 1 {
		m["Pool"] = gemmPool(k, d.flops())
	}
	if d.implicitData() {
		return d.backwardDataConv(k, S, m, dy, out)
	}
	pack := d.packWeight(k, m, true, d.C/d.G*d.KH*d.KW, d.O/d.G)
	pre := ""
	if !d.direct() {
		addScratch(k, Scratch{Name: "cols", Size: S * m["ColSize"].(int)})
		pre = expand("col := cols[slot*{{.ColSize}}:][:{{.ColSize}}]\n", m)
		m["Col2im"] = col2im(d, "dxs")
	}
	m["Dy"], m["Out"] = dy, out
	gb := expand(`
{{- if .Direct}}
gemm.SgemmPacked({{.Pool}}, {{.CG}}, {{.OHW}}, {{.OG}}, {{.PackedW}}, dys[g*{{.OGOHW}}:], {{.OHW}}, dxs[g*{{.CGHW}}:], {{.HW}}, false, gemm.Epilogue{})
{{- else}}
gemm.SgemmPacked({{.Pool}}, {{.CGKK}}, {{.OHW}}, {{.OG}}, {{.PackedW}}, dys[g*{{.OGOHW}}:], {{.OHW}}, col, {{.OHW}}, false, gemm.Epilogue{})
{{.Col2im}}
{{- end}}
`, m)
	body := expand(`dys := {{.Dy}}[s*{{.OOHW}}:][:{{.OOHW}}]
dxs := {{.Out}}[s*{{.CHW}}:][:{{.CHW}}]
`, m) + groupLoop(d.G, gb)
	return []Phase{pack, {Split: PerSlot, Count: S, Body: slotLoop(S, pre, body)}}
}

// implicitData reports whether the input gradient is the convolution of
// the output gradient, padded by KH-1-PH and KW-1-PW, with the weight
// flipped and transposed (backwardDataConv), rather than W^T x dy summed by
// col2im: at stride 1 without dilation, where the input's rows are whole
// panels of 16, so that the GEMM's kernels read the padded gradient in
// place. The product is as large either way; this one has the convolution's
// long inner dimension, O*KH*KW rather than O, and writes no column matrix
// KH*KW times the input for col2im to read back.
func (d convGeom) implicitData() bool {
	return !d.direct() && d.SH == 1 && d.SW == 1 && d.DH == 1 && d.DW == 1 &&
		d.PH < d.KH && d.PW < d.KW && d.W%asm.NR == 0
}

// backwardDataConv returns the phases of backwardData with implicitData:
// the first flips each group's weight, wf[c, o, p, q] = W[o, c, KH-1-p,
// KW-1-q], and packs it; the second copies each sample's output gradient
// into the interior of a padded copy (whose border is zero from New and
// never written) and convolves it with the flipped weight.
func (d convGeom) backwardDataConv(k *Kernel, S int, m map[string]any, dy, out string) []Phase {
	CG, OG, KK := d.C/d.G, d.O/d.G, d.KH*d.KW
	QH, QW := d.KH-1-d.PH, d.KW-1-d.PW
	HQ, WQ := d.OH+2*QH, d.OW+2*QW
	m["QH"], m["QW"], m["HQ"], m["WQ"], m["OHQWQ"] = QH, QW, HQ, WQ, d.O*HQ*WQ
	m["OGHQWQ"], m["OGKK"] = OG*HQ*WQ, OG*KK
	m["Dy"], m["Out"] = dy, out
	addScratch(k, Scratch{Name: "wf", Size: d.G * CG * OG * KK})
	size := ceilDiv(CG, asm.MR) * asm.MR * OG * KK
	addScratch(k, Scratch{Name: "wp", Size: d.G * size})
	m["PackedW"] = fmt.Sprintf("wp[g*%d:][:%d]", size, size)
	pack := Phase{Name: "Pack", Split: Serial, Body: expand(`for g := 0; g < {{.G}}; g++ {
	for c := 0; c < {{.CG}}; c++ {
		for o := 0; o < {{.OG}}; o++ {
			src := w[((g*{{.OG}}+o)*{{.CG}}+c)*{{.KK}}:][:{{.KK}}]
			dst := wf[((g*{{.CG}}+c)*{{.OG}}+o)*{{.KK}}:][:{{.KK}}]
			for i, v := range src {
				dst[{{.KK}}-1-i] = v
			}
		}
	}
}
`, m) + groupLoop(d.G, expand("gemm.PackA({{.PackedW}}, false, {{.CG}}, {{.OGKK}}, wf[g*{{.CG}}*{{.OGKK}}:], {{.OGKK}})\n", m))}
	addScratch(k, Scratch{Name: "dyps", Size: S * d.O * HQ * WQ})
	pre := expand("dyp := dyps[slot*{{.OHQWQ}}:][:{{.OHQWQ}}]\n", m)
	body := expand(`dys := {{.Dy}}[s*{{.OOHW}}:][:{{.OOHW}}]
dxs := {{.Out}}[s*{{.CHW}}:][:{{.CHW}}]
for o := 0; o < {{.O}}; o++ {
	gemm.CopyRows(dyp[(o*{{.HQ}}+{{.QH}})*{{.WQ}}+{{.QW}}:], dys[o*{{.OHW}}:], {{.OH}}, {{.OW}}, {{.WQ}}, {{.OW}})
}
`, m) + groupLoop(d.G, expand(`gemm.SgemmIm2colPacked({{.Pool}}, {{.CG}}, {{.PackedW}}, gemm.Im2col{X: dyp[g*{{.OGHQWQ}}:][:{{.OGHQWQ}}], C: {{.OG}}, H: {{.HQ}}, W: {{.WQ}}, KH: {{.KH}}, KW: {{.KW}}, SH: 1, SW: 1, DH: 1, DW: 1, OH: {{.H}}, OW: {{.W}}}, dxs[g*{{.CGHW}}:], {{.HW}}, false, gemm.Epilogue{})
`, m))
	return []Phase{pack, {Split: PerSlot, Count: S, Body: slotLoop(S, pre, body)}}
}

// emitConv2DBackwardFilter computes the weight gradient.
func emitConv2DBackwardFilter(n *ir.Node, c *Context) (*Kernel, error) {
	k := &Kernel{Args: []Arg{{"x", 0}, {"dy", 1}}}
	k.Phases = newConvGeom(n).backwardFilter(k, c, "dy", "y")
	return k, nil
}

// backwardFilter returns the phases that compute the weight gradient out
// from the kernel's argument x and the output gradient dy: each slot sums
// dy_s[g] x col_s[g]^T over its samples in order into a partial (the GEMM
// accumulating), and a second phase adds the partials in slot order. With
// one slot the GEMMs accumulate straight into the gradient.
//
// With implicitBT the partial is the transpose, col_s[g] x dy_s[g]^T
// through gemm.SgemmIm2colBT, whose kernels read the im2col matrix's rows
// straight from the sample and pack only dy, and the second phase, which
// then runs with one slot too, transposes as it adds.
func (d convGeom) backwardFilter(k *Kernel, c *Context, dy, out string) []Phase {
	m := d.data()
	S := slots(c)
	m["Pool"] = "nil"
	if S == 1 {
		m["Pool"] = gemmPool(k, d.flops())
	}
	m["Dy"] = dy
	size := d.O * d.C / d.G * d.KH * d.KW
	pre := "first := slot * n / ns\n"
	trans := d.implicitBT()
	if S == 1 && !trans {
		pre += "part := " + out + "\n"
	} else {
		addScratch(k, Scratch{Name: "parts", Size: S * size})
		pre += expand("part := parts[slot*{{.OCGKK}}:][:{{.OCGKK}}]\n", m)
	}
	var gb, sample string
	switch {
	case d.implicitT():
		// The GEMM reads the im2col matrix straight from the (padded)
		// sample.
		var slot string
		slot, sample = d.implicitInput(k, S, m)
		pre += slot
		gb = expand(`gemm.SgemmIm2colT({{.Pool}}, {{.OG}}, dys[g*{{.OGOHW}}:], {{.OHW}}, {{.Im2col}}, part[g*{{.OGCGKK}}:], {{.CGKK}}, s > first)
`, m)
		if d.implicitTDot(S) {
			gb = expand(`gemm.SgemmIm2colTDot({{.OG}}, dys[g*{{.OGOHW}}:], {{.OHW}}, {{.Im2col}}, part[g*{{.OGCGKK}}:], {{.CGKK}}, s > first)
`, m)
		}
		if trans {
			gb = expand(`gemm.SgemmIm2colBT({{.Pool}}, {{.OG}}, {{.Im2col}}, dys[g*{{.OGOHW}}:], {{.OHW}}, part[g*{{.OGCGKK}}:], {{.OG}}, s > first)
`, m)
		}
	default:
		var slot, group string
		slot, sample, group = d.colInput(k, S, m)
		pre += slot
		gb = group + expand(`gemm.SgemmPar({{.Pool}}, false, true, {{.OG}}, {{.CGKK}}, {{.OHW}}, dys[g*{{.OGOHW}}:], {{.OHW}}, col, {{.OHW}}, part[g*{{.OGCGKK}}:], {{.CGKK}}, s > first)
`, m)
	}
	body := expand(`xs := x[s*{{.CHW}}:][:{{.CHW}}]
dys := {{.Dy}}[s*{{.OOHW}}:][:{{.OOHW}}]
`, m) + sample + groupLoop(d.G, gb)
	phases := []Phase{{Name: sumPhase(S > 1 || trans), Split: PerSlot, Count: S, Body: slotLoop(S, pre, body)}}
	if trans {
		return append(phases, d.sumPartsT(S, out))
	}
	if S > 1 {
		phases = append(phases, sumParts(S, size, out))
	}
	return phases
}

// sumParts returns the phase that adds the S partials of a weight
// gradient of size floats into out, in slot order; the slots past
// min(n, S) hold nothing of this call.
func sumParts(S, size int, out string) Phase {
	red := Phase{Split: Serial, Body: fmt.Sprintf(`ns := min(n, %d)
dst := %s[:%d]
copy(dst, parts[:%d])
for slot := 1; slot < ns; slot++ {
	p := parts[slot*%d:][:%d]
	for i, v := range p {
		dst[i] += v
	}
}
`, S, out, size, size, size, size)}
	if S*size >= 1<<16 {
		red.Split, red.Count = PerIndex, size
		red.Body = fmt.Sprintf(`ns := min(n, %d)
dst := %s[lo:hi]
copy(dst, parts[lo:hi])
for slot := 1; slot < ns; slot++ {
	p := parts[slot*%d+lo : slot*%d+hi]
	for i, v := range p {
		dst[i] += v
	}
}
`, S, out, size, size)
	}
	return red
}

// sumPartsT is sumParts for partials that hold each group's gradient
// transposed, [CG*KH*KW, OG]: it adds row r of every group's partials in
// slot order and stores the sums in column r of the group's gradient.
func (d convGeom) sumPartsT(S int, out string) Phase {
	m := d.data()
	m["S"], m["Out"] = S, out
	rows := d.G * d.C / d.G * d.KH * d.KW
	red := Phase{Split: PerIndex, Count: rows}
	if S*d.O*d.C/d.G*d.KH*d.KW < 1<<16 {
		red = Phase{Split: Serial}
		m["Rows"] = rows
	}
	red.Body = expand(`ns := min(n, {{.S}})
{{- if .Rows}}
for r := 0; r < {{.Rows}}; r++ {
{{- else}}
for r := lo; r < hi; r++ {
{{- end}}
	g, kk := r/{{.CGKK}}, r%{{.CGKK}}
	dst := {{.Out}}[g*{{.OGCGKK}}+kk:]
	for o := 0; o < {{.OG}}; o++ {
		v := parts[r*{{.OG}}+o]
		for slot := 1; slot < ns; slot++ {
			v += parts[slot*{{.OCGKK}}+r*{{.OG}}+o]
		}
		dst[o*{{.CGKK}}] = v
	}
}
`, m)
	return red
}

// addScratch adds s to k's scratch unless k has scratch of that name
// already, which the phases then share (they run one after the other),
// grown to the larger size.
func addScratch(k *Kernel, s Scratch) {
	for i, t := range k.Scratch {
		if t.Name == s.Name {
			k.Scratch[i].Size = max(t.Size, s.Size)
			return
		}
	}
	k.Scratch = append(k.Scratch, s)
}

// sumPhase names the first phase of a weight gradient: "Partial" when a
// second phase adds the partials it leaves.
func sumPhase(reduced bool) string {
	if reduced {
		return "Partial"
	}
	return ""
}

// emitFoldBNWeight scales each output channel of a weight by
// gamma/sqrt(var+eps), in float64 as PyTorch folds.
func emitFoldBNWeight(n *ir.Node, c *Context) (*Kernel, error) {
	O := n.Shape[0]
	per := n.Shape.Size() / O
	if len(n.Shape) == 2 && c.panelWeight(n.Args[0]) {
		// A linear layer's weight, which may lie as column panels: row o
		// through gemm.WeightIndex.
		body := fmt.Sprintf(`for o := range %d {
s := float64(gamma[o]) / math.Sqrt(float64(variance[o])+%v)
for j := range %d {
i := gemm.WeightIndex(%d, %d, o, j)
y[i] = float32(float64(w[i]) * s)
}
}
`, O, n.Attrs.Eps, per, O, per)
		return &Kernel{Args: []Arg{{"w", 0}, {"gamma", 1}, {"variance", 2}}, Phases: []Phase{{Split: Serial, Body: body}}}, nil
	}
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
