package cuda

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cnnc/cnnc/ir"
	cudart "github.com/cnnc/cnnc/runtime/cuda"
)

// An emitter writes the kernels and launches of one node.
type emitter func(g *generator, gp *graphPlan, n *ir.Node) error

// emitters has one entry per computing op of the op table.
var emitters map[ir.Op]emitter

func init() {
	emitters = map[ir.Op]emitter{
		ir.OpConv2D:               emitConv2D,
		ir.OpConv2DReLU:           emitConv2D,
		ir.OpConv2DTanh:           emitConv2D,
		ir.OpLinearReLU:           emitLinear,
		ir.OpLinearTanh:           emitLinear,
		ir.OpFoldBNWeight:         emitElementwise,
		ir.OpFoldBNBias:           emitElementwise,
		ir.OpConv2DBackwardData:   emitConv2DBackwardData,
		ir.OpConv2DBackwardFilter: emitConv2DBackwardFilter,
		ir.OpLinear:               emitLinear,
		ir.OpLinearBackwardData:   emitLinearBackwardData,
		ir.OpLinearBackwardWeight: emitLinearBackwardWeight,
		ir.OpMaxPool:              emitPool,
		ir.OpAvgPool:              emitPool,
		ir.OpMaxPoolBackward:      emitMaxPoolBackward,
		ir.OpMaxPoolReLUBackward:  emitMaxPoolBackward,
		ir.OpAvgPoolBackward:      emitAvgPoolBackward,

		ir.OpReLU:                       emitElementwise,
		ir.OpLeakyReLU:                  emitElementwise,
		ir.OpTanh:                       emitElementwise,
		ir.OpSigmoid:                    emitElementwise,
		ir.OpScale:                      emitElementwise,
		ir.OpAdd:                        emitElementwise,
		ir.OpDropout:                    emitElementwise,
		ir.OpDropoutBackward:            emitElementwise,
		ir.OpReLUBackward:               emitElementwise,
		ir.OpLeakyReLUBackward:          emitElementwise,
		ir.OpTanhBackward:               emitElementwise,
		ir.OpSigmoidBackward:            emitElementwise,
		ir.OpL2Backward:                 emitElementwise,
		ir.OpL1Backward:                 emitElementwise,
		ir.OpElasticNetBackward:         emitElementwise,
		ir.OpBatchNormInfer:             emitElementwise,
		ir.OpL2:                         emitPenalty,
		ir.OpL1:                         emitPenalty,
		ir.OpElasticNet:                 emitPenalty,
		ir.OpBiasGrad:                   emitBiasGrad,
		ir.OpBatchNorm:                  emitBatchNorm,
		ir.OpRunningMean:                emitRunningStat,
		ir.OpRunningVar:                 emitRunningStat,
		ir.OpBatchNormBackward:          emitBatchNormBackward,
		ir.OpBatchNormBackwardGamma:     emitBatchNormBackwardGamma,
		ir.OpBatchNormReLU:              emitBatchNorm,
		ir.OpBatchNormReLUBackward:      emitBatchNormBackward,
		ir.OpBatchNormReLUBackwardGamma: emitBatchNormBackwardGamma,
		ir.OpReLUBiasGrad:               emitBiasGrad,
		ir.OpConv2DBNReLU:               emitConvBNReLU,
		ir.OpConv2DBNReLUBackward:       emitConvBNReLUBackward,

		ir.OpSoftmax:                     emitRows,
		ir.OpSoftmaxBackward:             emitRows,
		ir.OpSoftmaxCrossEntropyBackward: emitRows,
		ir.OpSVMLossBackward:             emitRows,
		ir.OpSoftmaxCrossEntropy:         emitLoss,
		ir.OpSVMLoss:                     emitLoss,
	}
}

// Ops returns the ops the CUDA target has kernels for.
func Ops() []ir.Op {
	var ops []ir.Op
	for _, op := range ir.Ops() {
		if emitters[op] != nil {
			ops = append(ops, op)
		}
	}
	return ops
}

var placeholder = regexp.MustCompile(`\{[A-Z][A-Z0-9_]*\}`)

// expand replaces every {NAME} in s by the value given for NAME in kv
// (pairs of name and value). A placeholder without a value is a bug.
func expand(s string, kv ...any) string {
	vals := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		vals[kv[i].(string)] = fmt.Sprint(kv[i+1])
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		v, ok := vals[m[1:len(m)-1]]
		if !ok {
			panic(fmt.Sprintf("cuda: template has no value for %s", m)) // a bug in an emitter
		}
		return v
	})
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func roundUp(a, b int) int { return ceilDiv(a, b) * b }

// count returns the C expression and grid dimension for an element-wise
// loop over n's value: the first n samples if it is batched, all of it
// otherwise.
func count(gp *graphPlan, n *ir.Node, block int) (string, cudart.Dim) {
	size := max(n.Shape.Size(), 1)
	if gp.batched[n] {
		per := size / n.Shape[0]
		return fmt.Sprintf("n * %d", per), cudart.Dim{PerSample: per, Div: block}
	}
	return fmt.Sprint(size), cudart.Dim{Fixed: size, Div: block}
}

// channelDims views [N, C, ...] as N, C and S, the product of the rest.
func channelDims(s ir.Shape) (n, c, rest int) {
	rest = 1
	for _, d := range s[2:] {
		rest *= d
	}
	return s[0], s[1], rest
}

var one = cudart.Dim{Fixed: 1}

// emitElementwise emits the ops that compute each element from the
// elements at the same index of their arguments.
func emitElementwise(g *generator, gp *graphPlan, n *ir.Node) error {
	a := n.Attrs
	buf := func(i int) int { return gp.buf[n.Args[i]] }
	var params []kparam
	var stmt, doc string
	switch n.Op {
	case ir.OpReLU:
		params, doc = []kparam{in("x", buf(0))}, "max(x, 0)"
		stmt = "const float v = x[i];\nout[i] = v > 0.0f ? v : 0.0f;"
	case ir.OpLeakyReLU:
		params, doc = []kparam{in("x", buf(0))}, "leaky ReLU"
		stmt = expand("const float v = x[i];\nout[i] = v > 0.0f ? v : {A} * v;", "A", f32(a.Alpha))
	case ir.OpTanh:
		params, doc = []kparam{in("x", buf(0))}, "tanh(x)"
		stmt = "out[i] = tanhf(x[i]);"
	case ir.OpSigmoid:
		params, doc = []kparam{in("x", buf(0))}, "1 / (1 + exp(-x))"
		stmt = "out[i] = 1.0f / (1.0f + expf(-x[i]));"
	case ir.OpScale:
		params, doc = []kparam{in("x", buf(0))}, "alpha * x"
		stmt = expand("out[i] = {A} * x[i];", "A", f32(a.Alpha))
	case ir.OpAdd:
		params, doc = []kparam{in("x", buf(0)), in("z", buf(1))}, "x + z"
		stmt = "out[i] = x[i] + z[i];"
	case ir.OpDropout, ir.OpDropoutBackward:
		params = []kparam{in("x", buf(0)), seedParam(a.Seed), g.stepParam()}
		doc = fmt.Sprintf("dropout mask (keep %g, classic %v) recomputed from the seed", a.Keep, a.Classic)
		kept := expand("x[i] / {K}", "K", f32(a.Keep))
		if a.Classic {
			kept = "x[i]"
		}
		stmt = expand("const float u = cnnc_uniform01(seed, *step, (unsigned long long)i);\nout[i] = (double)u < {K} ? {KEPT} : 0.0f;",
			"K", f64(a.Keep), "KEPT", kept)
	case ir.OpReLUBackward:
		params, doc = []kparam{in("y", buf(0)), in("dy", buf(1))}, "dy where y > 0"
		stmt = "out[i] = y[i] > 0.0f ? dy[i] : 0.0f;"
	case ir.OpLeakyReLUBackward:
		params, doc = []kparam{in("y", buf(0)), in("dy", buf(1))}, "dy where y > 0, else alpha * dy"
		stmt = expand("out[i] = y[i] > 0.0f ? dy[i] : {A} * dy[i];", "A", f32(a.Alpha))
	case ir.OpTanhBackward:
		params, doc = []kparam{in("y", buf(0)), in("dy", buf(1))}, "dy * (1 - y^2)"
		stmt = "const float v = y[i];\nout[i] = dy[i] * (1.0f - v * v);"
	case ir.OpSigmoidBackward:
		params, doc = []kparam{in("y", buf(0)), in("dy", buf(1))}, "dy * y * (1 - y)"
		stmt = "const float v = y[i];\nout[i] = dy[i] * v * (1.0f - v);"
	case ir.OpL2Backward:
		params, doc = []kparam{in("w", buf(0)), in("dloss", buf(1))}, "dloss * 2 * lambda * w"
		stmt = expand("out[i] = dloss[0] * ({L2} * w[i]);", "L2", f32(2*a.Lambda))
	case ir.OpL1Backward:
		params, doc = []kparam{in("w", buf(0)), in("dloss", buf(1))}, "dloss * lambda * sign(w)"
		stmt = expand("out[i] = dloss[0] * ({L} * cnnc_sign(w[i]));", "L", f32(a.Lambda))
	case ir.OpElasticNetBackward:
		params, doc = []kparam{in("w", buf(0)), in("dloss", buf(1))}, "dloss * lambda * (2 * beta * w + sign(w))"
		stmt = expand("out[i] = dloss[0] * ({L} * ({B2} * w[i] + cnnc_sign(w[i])));", "L", f32(a.Lambda), "B2", f32(2*a.Beta))
	case ir.OpBatchNormInfer:
		_, C, S := channelDims(n.Shape)
		params = []kparam{in("x", buf(0)), in("gamma", buf(1)), in("beta", buf(2)), in("mean", buf(3)), in("var_", buf(4))}
		doc = "batch normalisation with the running statistics"
		stmt = expand("const int c = (i / {S}) % {C};\nout[i] = (x[i] - mean[c]) / sqrtf(var_[c] + {EPS}) * gamma[c] + beta[c];",
			"S", S, "C", C, "EPS", f32(n.Attrs.Eps))
	case ir.OpFoldBNWeight:
		per := n.Shape.Size() / n.Shape[0]
		params = []kparam{in("w", buf(0)), in("gamma", buf(1)), in("var_", buf(2))}
		doc = "weight with an inference batch-norm folded in, in double precision"
		stmt = expand("const int o = i / {PER};\nout[i] = (float)((double)w[i] * ((double)gamma[o] / sqrt((double)var_[o] + {EPS})));",
			"PER", per, "EPS", f64(a.Eps))
	case ir.OpFoldBNBias:
		params = []kparam{in("gamma", buf(0)), in("beta", buf(1)), in("mean", buf(2)), in("var_", buf(3))}
		b := "0.0"
		if len(n.Args) > 4 {
			params = append(params, in("bias", buf(4)))
			b = "(double)bias[i]"
		}
		doc = "bias with an inference batch-norm folded in, in double precision"
		stmt = expand("out[i] = (float)(({B} - (double)mean[i]) * (double)gamma[i] / sqrt((double)var_[i] + {EPS}) + (double)beta[i]);",
			"B", b, "EPS", f64(a.Eps))
	default:
		return fmt.Errorf("no element-wise kernel for %s", n.Op)
	}
	g.elementwise(gp, n, "", doc, params, stmt)
	return nil
}

// elementwise emits a grid-stride loop over n's elements running stmt for
// each index i; params come before the output and n.
func (g *generator) elementwise(gp *graphPlan, n *ir.Node, suffix, doc string, params []kparam, stmt string) {
	cnt, dim := count(gp, n, 256)
	params = append(params, out("out", gp.buf[n]), nParam)
	body := expand("const int count = {COUNT};\nfor (int i = blockIdx.x * 256 + threadIdx.x; i < count; i += gridDim.x * 256) {\n{STMT}\n}\n",
		"COUNT", cnt, "STMT", indent(stmt))
	g.kernel(gp, n, suffix, doc, "", [3]cudart.Dim{dim, one, one}, 256, params, body)
}

// A reduction is a per-channel sum over data viewed as [rows, C, S]: a
// first kernel sums fixed chunks of CH elements of each channel, one block
// per (chunk, channel), by a tree; a second sums each channel's chunks in
// order. The result does not depend on the launch.
type reduction struct {
	C, S     int
	batched  bool // rows is the number of samples n; otherwise 1
	maxCount int  // elements per channel at most
	q        int  // number of sums
	params   []kparam
	pre      string   // per-block code; c is the channel
	vals     []string // the q values summed at element idx of channel c
	fin      []kparam
	finish   string // per-channel code with the sums s[0..q) and count
}

// reduce emits the two kernels of r for node n.
func (g *generator) reduce(gp *graphPlan, n *ir.Node, suffix, doc string, r reduction) {
	chunks := 1
	if r.maxCount > 1024 {
		chunks = max(1, min(ceilDiv(528, r.C), ceilDiv(r.maxCount, 1024)))
	}
	ch := roundUp(ceilDiv(r.maxCount, chunks), 256)
	nch := ceilDiv(r.maxCount, ch)
	part := g.alloc(r.q * r.C * nch)
	cnt := fmt.Sprint(r.maxCount)
	dim := cudart.Dim{Fixed: r.maxCount, Div: ch}
	if r.batched {
		cnt = fmt.Sprintf("n * %d", r.S)
		dim = cudart.Dim{PerSample: r.S, Div: ch}
	}
	var accum, store strings.Builder
	for i, v := range r.vals {
		fmt.Fprintf(&accum, "  acc[%d] += %s;\n", i, v)
		fmt.Fprintf(&store, "  part[%d + c * %d + ch] = acc[%d];\n", i*r.C*nch, nch, i)
	}
	body := expand(`const int c = blockIdx.y, ch = blockIdx.x;
const int count = {COUNT};
const int e0 = ch * {CH}, e1 = cnnc_min(e0 + {CH}, count);
{PRE}float acc[{Q}];
for (int q = 0; q < {Q}; ++q) acc[q] = 0.0f;
for (int e = e0 + threadIdx.x; e < e1; e += 256) {
  const int idx = (e / {S}) * {CS} + c * {S} + e % {S};
{ACCUM}}
cnnc_block_sum<256, {Q}>(acc);
if (threadIdx.x == 0) {
{STORE}}
`, "COUNT", cnt, "CH", ch, "PRE", r.pre, "Q", r.q, "S", r.S, "CS", r.C*r.S, "ACCUM", accum.String(), "STORE", store.String())
	params := append(append([]kparam{}, r.params...), out("part", part), nParam)
	g.kernel(gp, n, suffix+"_partial", doc+": partial sums over chunks of "+fmt.Sprint(ch)+" elements",
		"", [3]cudart.Dim{dim, {Fixed: r.C}, one}, 256, params, body)

	var sums strings.Builder
	for i := range r.vals {
		fmt.Fprintf(&sums, "  s[%d] = 0.0f;\n  for (int ch = 0; ch < nch; ++ch) s[%d] += part[%d + c * %d + ch];\n", i, i, i*r.C*nch, nch)
	}
	body = expand(`const int count = {COUNT};
const int nch = (count + {CH} - 1) / {CH};
for (int c = blockIdx.x * 128 + threadIdx.x; c < {C}; c += gridDim.x * 128) {
  float s[{Q}];
{SUMS}{FINISH}}
`, "COUNT", cnt, "CH", ch, "C", r.C, "Q", r.q, "SUMS", sums.String(), "FINISH", indent(r.finish))
	params = append(append([]kparam{in("part", part)}, r.fin...), nParam)
	g.kernel(gp, n, suffix+"_final", doc+": the chunks' sums in order", "",
		[3]cudart.Dim{{Fixed: r.C, Div: 128}, one, one}, 128, params, body)
}

func emitBiasGrad(g *generator, gp *graphPlan, n *ir.Node) error {
	dy := n.Args[0]
	params := []kparam{in("dy", gp.buf[dy])}
	val, doc := "dy[idx]", "sum of dy over all axes but 1"
	if n.Op == ir.OpReLUBiasGrad {
		dy = n.Args[1]
		params = []kparam{in("y", gp.buf[n.Args[0]]), in("dy", gp.buf[dy])}
		val, doc = "(y[idx] > 0.0f ? dy[idx] : 0.0f)", "sum of dy where y > 0 over all axes but 1"
	}
	N, C, S := channelDims(dy.Shape)
	g.reduce(gp, n, "", doc, reduction{
		C: C, S: S, batched: gp.batched[dy], maxCount: N * S, q: 1,
		params: params,
		vals:   []string{val},
		fin:    []kparam{out("out", gp.buf[n])},
		finish: "out[c] = s[0];",
	})
	return nil
}

func emitPenalty(g *generator, gp *graphPlan, n *ir.Node) error {
	w := n.Args[0]
	a := n.Attrs
	var val, doc string
	switch n.Op {
	case ir.OpL2:
		val, doc = "w[idx] * w[idx]", "lambda * sum of w^2"
	case ir.OpL1:
		val, doc = "fabsf(w[idx])", "lambda * sum of |w|"
	case ir.OpElasticNet:
		val, doc = expand("{B} * w[idx] * w[idx] + fabsf(w[idx])", "B", f32(a.Beta)), "lambda * sum of beta * w^2 + |w|"
	}
	size := w.Shape.Size()
	g.reduce(gp, n, "", doc, reduction{
		C: 1, S: size, maxCount: size, q: 1,
		params: []kparam{in("w", gp.buf[w])},
		vals:   []string{val},
		fin:    []kparam{out("out", gp.buf[n])},
		finish: expand("out[0] = {L} * s[0];", "L", f32(a.Lambda)),
	})
	return nil
}

// batchStats returns the offsets of the per-channel mean and biased
// variance of x over the call's samples, emitting the kernels that compute
// them (two passes, as the reference) the first time a graph asks.
func (g *generator) batchStats(gp *graphPlan, x *ir.Node) (mean, variance int) {
	if s, ok := gp.stats[x]; ok {
		return s[0], s[1]
	}
	N, C, S := channelDims(x.Shape)
	mean, variance = g.alloc(C), g.alloc(C)
	gp.stats[x] = [2]int{mean, variance}
	g.reduce(gp, x, "_mean", "batch mean per channel", reduction{
		C: C, S: S, batched: gp.batched[x], maxCount: N * S, q: 1,
		params: []kparam{in("x", gp.buf[x])},
		vals:   []string{"x[idx]"},
		fin:    []kparam{out("mean", mean)},
		finish: "mean[c] = s[0] / (float)count;",
	})
	g.reduce(gp, x, "_var", "biased batch variance per channel", reduction{
		C: C, S: S, batched: gp.batched[x], maxCount: N * S, q: 1,
		params: []kparam{in("x", gp.buf[x]), in("mean", mean)},
		pre:    "const float mu = mean[c];\n",
		vals:   []string{"(x[idx] - mu) * (x[idx] - mu)"},
		fin:    []kparam{out("var_", variance)},
		finish: "var_[c] = s[0] / (float)count;",
	})
	return mean, variance
}

// bnSums returns the offset of the per-channel sums of dz and dz*xhat of a
// batch-norm backward, [2][C], emitting their kernels once; dz is dy, or
// dy where y > 0 when y, the output of a fused batch-norm and ReLU, is
// given.
func (g *generator) bnSums(gp *graphPlan, n, x, dy, y *ir.Node) int {
	key := [3]*ir.Node{x, dy, y}
	if off, ok := gp.sums[key]; ok {
		return off
	}
	mean, variance := g.batchStats(gp, x)
	N, C, S := channelDims(x.Shape)
	sums := g.alloc(2 * C)
	gp.sums[key] = sums
	params := []kparam{in("x", gp.buf[x]), in("dy", gp.buf[dy]), in("mean", mean), in("var_", variance)}
	dz := "dy[idx]"
	if y != nil {
		params = append(params, in("y", gp.buf[y]))
		dz = "(y[idx] > 0.0f ? dy[idx] : 0.0f)"
	}
	g.reduce(gp, n, "_sums", "sums of dy and dy * xhat per channel", reduction{
		C: C, S: S, batched: gp.batched[x], maxCount: N * S, q: 2,
		params: params,
		pre:    expand("const float mu = mean[c], istd = 1.0f / sqrtf(var_[c] + {EPS});\n", "EPS", f32(n.Attrs.Eps)),
		vals:   []string{dz, dz + " * ((x[idx] - mu) * istd)"},
		fin:    []kparam{out("sums", sums)},
		finish: expand("sums[c] = s[0];\nsums[{C} + c] = s[1];", "C", C),
	})
	return sums
}

func emitBatchNorm(g *generator, gp *graphPlan, n *ir.Node) error {
	x := n.Args[0]
	mean, variance := g.batchStats(gp, x)
	_, C, S := channelDims(x.Shape)
	result, doc := "v", "batch normalisation with the batch statistics"
	if n.Op == ir.OpBatchNormReLU {
		result, doc = "v > 0.0f ? v : 0.0f", "ReLU of batch normalisation with the batch statistics"
	}
	g.elementwise(gp, n, "", doc,
		[]kparam{in("x", gp.buf[x]), in("gamma", gp.buf[n.Args[1]]), in("beta", gp.buf[n.Args[2]]), in("mean", mean), in("var_", variance)},
		expand("const int c = (i / {S}) % {C};\nconst float v = (x[i] - mean[c]) / sqrtf(var_[c] + {EPS}) * gamma[c] + beta[c];\nout[i] = {RESULT};",
			"S", S, "C", C, "EPS", f32(n.Attrs.Eps), "RESULT", result))
	return nil
}

func emitRunningStat(g *generator, gp *graphPlan, n *ir.Node) error {
	x, old := n.Args[0], n.Args[1]
	mean, variance := g.batchStats(gp, x)
	_, _, S := channelDims(x.Shape)
	m := n.Attrs.Momentum
	if n.Op == ir.OpRunningMean {
		g.elementwise(gp, n, "", "running mean after the step",
			[]kparam{in("old", gp.buf[old]), in("mean", mean)},
			expand("out[i] = {KEEP} * old[i] + {M} * mean[i];", "KEEP", f32(1-m), "M", f32(m)))
		return nil
	}
	count := fmt.Sprintf("%d", S)
	if gp.batched[x] {
		count = fmt.Sprintf("n * %d", S)
	}
	g.elementwise(gp, n, "", "running variance after the step (unbiased batch variance)",
		[]kparam{in("old", gp.buf[old]), in("var_", variance)},
		expand("const float m = (float)({COUNT});\nout[i] = {KEEP} * old[i] + {M} * (var_[i] * m / (m - 1.0f));",
			"COUNT", count, "KEEP", f32(1-m), "M", f32(m)))
	return nil
}

func emitBatchNormBackward(g *generator, gp *graphPlan, n *ir.Node) error {
	x, gamma, dy := n.Args[0], n.Args[1], n.Args[2]
	var y *ir.Node
	params := []kparam{in("x", gp.buf[x]), in("gamma", gp.buf[gamma])}
	dz, doc := "dy[i]", "gradient of batch normalisation with respect to x"
	if n.Op == ir.OpBatchNormReLUBackward {
		y, dy = n.Args[2], n.Args[3]
		params = append(params, in("y", gp.buf[y]))
		dz, doc = "(y[i] > 0.0f ? dy[i] : 0.0f)", "gradient of ReLU of batch normalisation with respect to x"
	}
	mean, variance := g.batchStats(gp, x)
	sums := g.bnSums(gp, n, x, dy, y)
	_, C, S := channelDims(x.Shape)
	count := fmt.Sprintf("%d", S)
	if gp.batched[x] {
		count = fmt.Sprintf("n * %d", S)
	}
	params = append(params, in("dy", gp.buf[dy]), in("mean", mean), in("var_", variance), in("sums", sums))
	g.elementwise(gp, n, "", doc, params,
		expand(`const int c = (i / {S}) % {C};
const float m = (float)({COUNT});
const float istd = 1.0f / sqrtf(var_[c] + {EPS});
const float xhat = (x[i] - mean[c]) * istd;
out[i] = gamma[c] * istd / m * (m * {DZ} - sums[c] - xhat * sums[{C} + c]);`,
			"S", S, "C", C, "COUNT", count, "EPS", f32(n.Attrs.Eps), "DZ", dz))
	return nil
}

func emitBatchNormBackwardGamma(g *generator, gp *graphPlan, n *ir.Node) error {
	x, dy := n.Args[0], n.Args[1]
	var y *ir.Node
	if n.Op == ir.OpBatchNormReLUBackwardGamma {
		y, dy = n.Args[1], n.Args[2]
	}
	sums := g.bnSums(gp, n, x, dy, y)
	_, C, _ := channelDims(x.Shape)
	g.elementwise(gp, n, "", "gradient of batch normalisation with respect to gamma: sum of dy * xhat",
		[]kparam{in("sums", sums)}, expand("out[i] = sums[{C} + i];", "C", C))
	return nil
}

// emitRows emits the ops that work on one row [K] of an [N, K] value per
// thread.
func emitRows(g *generator, gp *graphPlan, n *ir.Node) error {
	x := n.Args[0]
	if len(x.Shape) != 2 {
		return fmt.Errorf("argument 0 has shape %v, want [N, K]", x.Shape)
	}
	K := x.Shape[1]
	buf := func(i int) int { return gp.buf[n.Args[i]] }
	var params []kparam
	var row, doc string
	switch n.Op {
	case ir.OpSoftmax:
		params, doc = []kparam{in("x", buf(0))}, "softmax over each row"
		row = `const float* xr = x + r * {K};
float* yr = out + r * {K};
float mx = xr[0];
for (int k = 1; k < {K}; ++k) mx = fmaxf(mx, xr[k]);
float s = 0.0f;
for (int k = 0; k < {K}; ++k) {
  const float e = expf(xr[k] - mx);
  yr[k] = e;
  s += e;
}
for (int k = 0; k < {K}; ++k) yr[k] /= s;`
	case ir.OpSoftmaxBackward:
		params, doc = []kparam{in("y", buf(0)), in("dy", buf(1))}, "gradient of softmax: y * (dy - sum(dy * y))"
		row = `const float* yr = y + r * {K};
const float* dyr = dy + r * {K};
float dot = 0.0f;
for (int k = 0; k < {K}; ++k) dot += dyr[k] * yr[k];
for (int k = 0; k < {K}; ++k) out[r * {K} + k] = yr[k] * (dyr[k] - dot);`
	case ir.OpSoftmaxCrossEntropyBackward:
		params, doc = []kparam{in("x", buf(0)), inInt("labels", buf(1)), in("dloss", buf(2))}, "gradient of softmax cross-entropy: dloss * (softmax(x) - onehot) / n"
		row = `const float* xr = x + r * {K};
float* dxr = out + r * {K};
const float g = dloss[0] / (float)n;
float mx = xr[0];
for (int k = 1; k < {K}; ++k) mx = fmaxf(mx, xr[k]);
float s = 0.0f;
for (int k = 0; k < {K}; ++k) s += expf(xr[k] - mx);
const int label = labels[r];
for (int k = 0; k < {K}; ++k) {
  float p = expf(xr[k] - mx) / s;
  if (k == label) p -= 1.0f;
  dxr[k] = g * p;
}`
	case ir.OpSVMLossBackward:
		params, doc = []kparam{in("x", buf(0)), inInt("labels", buf(1)), in("dloss", buf(2))}, "gradient of the SVM loss"
		row = expand(`const float* xr = x + r * {K};
float* dxr = out + r * {K};
const float g = dloss[0] / (float)n;
const int label = labels[r];
const float sy = xr[label];
int active = 0;
for (int k = 0; k < {K}; ++k) {
  const bool on = k != label && xr[k] - sy + {MARGIN} > 0.0f;
  dxr[k] = on ? g : 0.0f;
  active += on;
}
dxr[label] = -(float)active * g;`, "MARGIN", f32(n.Attrs.Margin), "K", "{K}")
	default:
		return fmt.Errorf("no row kernel for %s", n.Op)
	}
	cnt, dim := "n", cudart.Dim{PerSample: 1, Div: 128}
	if !gp.batched[n] {
		cnt, dim = fmt.Sprint(n.Shape[0]), cudart.Dim{Fixed: n.Shape[0], Div: 128}
	}
	params = append(params, out("out", gp.buf[n]), nParam)
	body := expand("const int rows = {ROWS};\nfor (int r = blockIdx.x * 128 + threadIdx.x; r < rows; r += gridDim.x * 128) {\n{ROW}}\n",
		"ROWS", cnt, "ROW", indent(expand(row, "K", K)))
	g.kernel(gp, n, "", doc, "", [3]cudart.Dim{dim, one, one}, 128, params, body)
	return nil
}

// emitLoss emits the mean-over-the-batch losses: one block whose threads
// take rows in a fixed order, then a tree sum.
func emitLoss(g *generator, gp *graphPlan, n *ir.Node) error {
	x := n.Args[0]
	if len(x.Shape) != 2 {
		return fmt.Errorf("argument 0 has shape %v, want [N, K]", x.Shape)
	}
	K := x.Shape[1]
	var row, doc string
	switch n.Op {
	case ir.OpSoftmaxCrossEntropy:
		doc = "mean softmax cross-entropy"
		row = `float mx = xr[0];
for (int k = 1; k < {K}; ++k) mx = fmaxf(mx, xr[k]);
float s = 0.0f;
for (int k = 0; k < {K}; ++k) s += expf(xr[k] - mx);
acc[0] += logf(s) + mx - xr[labels[r]];`
	case ir.OpSVMLoss:
		doc = "mean multiclass SVM loss"
		row = expand(`const int label = labels[r];
const float sy = xr[label];
for (int k = 0; k < {K}; ++k)
  if (k != label) acc[0] += fmaxf(0.0f, xr[k] - sy + {MARGIN});`, "MARGIN", f32(n.Attrs.Margin), "K", "{K}")
	}
	rows := "n"
	if !gp.batched[x] {
		rows = fmt.Sprint(x.Shape[0])
	}
	body := expand(`const int rows = {ROWS};
float acc[1] = {0.0f};
for (int r = threadIdx.x; r < rows; r += 256) {
  const float* xr = x + r * {K};
{ROW}}
cnnc_block_sum<256, 1>(acc);
if (threadIdx.x == 0) out[0] = acc[0] / (float)rows;
`, "ROWS", rows, "ROW", indent(expand(row, "K", K)), "K", K)
	params := []kparam{in("x", gp.buf[x]), inInt("labels", gp.buf[n.Args[1]]), out("out", gp.buf[n]), nParam}
	g.kernel(gp, n, "", doc, "", [3]cudart.Dim{one, one, one}, 256, params, body)
	return nil
}

// poolParams returns a pool's shapes and attributes as template values.
func poolVals(x, y *ir.Node, a ir.Attrs) []any {
	_, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	OH, OW := y.Shape[2], y.Shape[3]
	return []any{"C", C, "H", H, "W", W, "OH", OH, "OW", OW, "KH", a.Kernel[0], "KW", a.Kernel[1],
		"SH", a.Stride[0], "SW", a.Stride[1], "PH", a.Pad[0], "PW", a.Pad[1], "COUNT_F", f32(float64(a.Kernel[0] * a.Kernel[1]))}
}

// maxWindow is the code that finds the first maximum of window (i, j) of
// plane xp, PyTorch's choice, leaving its index in the plane in arg (NaN
// wins, as in the reference).
const maxWindow = `int arg = -1;
float best = CNNC_NEG_INF;
for (int p = 0; p < {KH}; ++p) {
  const int h = oi * {SH} - {PH} + p;
  if (h < 0 || h >= {H}) continue;
  for (int q = 0; q < {KW}; ++q) {
    const int w = oj * {SW} - {PW} + q;
    if (w < 0 || w >= {W}) continue;
    const float v = xp[h * {W} + w];
    if (arg < 0 || v > best || (v != v && best == best)) {
      best = v;
      arg = h * {W} + w;
    }
  }
}`

func emitPool(g *generator, gp *graphPlan, n *ir.Node) error {
	x := n.Args[0]
	vals := poolVals(x, n, n.Attrs)
	var stmt, doc string
	if n.Op == ir.OpMaxPool {
		doc = "max pooling"
		stmt = expand(`const int oj = i % {OW}, t = i / {OW}, oi = t % {OH}, plane = t / {OH};
const float* xp = x + plane * {H} * {W};
`+maxWindow+`
out[i] = best;`, vals...)
	} else {
		doc = "average pooling, padding counted in the divisor"
		stmt = expand(`const int oj = i % {OW}, t = i / {OW}, oi = t % {OH}, plane = t / {OH};
const float* xp = x + plane * {H} * {W};
float s = 0.0f;
for (int p = 0; p < {KH}; ++p) {
  const int h = oi * {SH} - {PH} + p;
  if (h < 0 || h >= {H}) continue;
  for (int q = 0; q < {KW}; ++q) {
    const int w = oj * {SW} - {PW} + q;
    if (w >= 0 && w < {W}) s += xp[h * {W} + w];
  }
}
out[i] = s / {COUNT_F};`, vals...)
	}
	g.elementwise(gp, n, "", doc, []kparam{in("x", gp.buf[x])}, stmt)
	return nil
}

// windows is the code that loops over the pool windows (i, j) that hold
// input element (h0, w0).
const windows = `const int w0 = i % {W}, t = i / {W}, h0 = t % {H}, plane = t / {H};
const int ilo = h0 + {PH} - {KH} + 1 <= 0 ? 0 : (h0 + {PH} - {KH} + 1 + {SH} - 1) / {SH};
const int ihi = cnnc_min((h0 + {PH}) / {SH}, {OH} - 1);
const int jlo = w0 + {PW} - {KW} + 1 <= 0 ? 0 : (w0 + {PW} - {KW} + 1 + {SW} - 1) / {SW};
const int jhi = cnnc_min((w0 + {PW}) / {SW}, {OW} - 1);
float acc = 0.0f;
for (int oi = ilo; oi <= ihi; ++oi) {
  for (int oj = jlo; oj <= jhi; ++oj) {
{BODY}
  }
}
out[i] = acc;`

func emitMaxPoolBackward(g *generator, gp *graphPlan, n *ir.Node) error {
	x, dy := n.Args[0], n.Args[1]
	vals := poolVals(x, dy, n.Attrs)
	body := indent(indent(expand(maxWindow+"\nif (arg == h0 * {W} + w0) acc += dyp[oi * {OW} + oj];", vals...)))
	stmt := expand(windows, append(vals, "BODY", body)...)
	stmt = expand("const float* xp = x + (i / ({H} * {W})) * {H} * {W};\nconst float* dyp = dy + (i / ({H} * {W})) * {OH} * {OW};\n", vals...) + stmt
	doc := "gradient of max pooling, gathered: each input element sums the dy of the windows whose first maximum it is"
	if n.Op == ir.OpMaxPoolReLUBackward {
		stmt += "\nif (!(x[i] > 0.0f)) out[i] = 0.0f; // through the ReLU whose output x is"
		doc += ", where x > 0"
	}
	g.elementwise(gp, n, "", doc, []kparam{in("x", gp.buf[x]), in("dy", gp.buf[dy])}, stmt)
	return nil
}

func emitAvgPoolBackward(g *generator, gp *graphPlan, n *ir.Node) error {
	dy := n.Args[0]
	vals := poolVals(n, dy, n.Attrs)
	stmt := expand("const float* dyp = dy + (i / ({H} * {W})) * {OH} * {OW};\n", vals...) +
		expand(windows, append(vals, "BODY", "    acc += dyp[oi * {OW} + oj] / {COUNT_F};")...)
	stmt = expand(stmt, vals...)
	g.elementwise(gp, n, "", "gradient of average pooling, gathered over the windows that hold each input element",
		[]kparam{in("dy", gp.buf[dy])}, stmt)
	return nil
}
