package eval_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
)

// A gradCase is a small graph that holds a forward node out, a weight node
// (dy for a tensor out, the scalar dloss for a loss), and for some feeds the
// backward node that should compute d sum(out*weight) / d feed. The test
// checks each such node against central finite differences of out.
type gradCase struct {
	name   string
	batch  int
	opts   eval.Options
	build  func(g *ir.Graph) (out, weight *ir.Node, grads map[string]*ir.Node)
	adjust func(feeds map[string]*eval.Tensor) // keeps inputs away from kinks and ties
}

const (
	fdStep = 1e-5
	fdRtol = 1e-5
	fdAtol = 1e-7
)

func runGradCase(t *testing.T, c gradCase) {
	t.Helper()
	g := ir.NewGraph("grad", c.batch)
	out, weight, grads := c.build(g)
	mustValidate(t, g)
	feeds := eval.RandomFeeds(g, 42)
	if c.adjust != nil {
		c.adjust(feeds)
	}
	vals, err := eval.Run(g, feeds, c.opts)
	if err != nil {
		t.Fatal(err)
	}
	w := vals[weight.ID]
	if len(w.Data) != len(vals[out.ID].Data) {
		t.Fatalf("weight %v does not match output %v", w.Shape, vals[out.ID].Shape)
	}
	f := func() float64 {
		vs, err := eval.Run(g, feeds, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for i, v := range vs[out.ID].Data {
			s += v * w.Data[i]
		}
		return s
	}
	names := make([]string, 0, len(grads))
	for name := range grads {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		x := feeds[name]
		numeric := eval.NewTensor(x.Shape)
		for i := range x.Data {
			orig := x.Data[i]
			x.Data[i] = orig + fdStep
			plus := f()
			x.Data[i] = orig - fdStep
			minus := f()
			x.Data[i] = orig
			numeric.Data[i] = (plus - minus) / (2 * fdStep)
		}
		if err := eval.Close(vals[grads[name].ID], numeric, fdRtol, fdAtol); err != nil {
			t.Errorf("d/d %s: %s against finite differences: %v", name, grads[name].Op, err)
		}
	}
}

type convCase struct {
	name             string
	n, c, h, w       int
	o, kh, kw        int
	stride, pad, dil [2]int
	groups           int
	noBias           bool
}

func TestConvGrad(t *testing.T) {
	cases := []convCase{
		{name: "3x3", n: 2, c: 3, h: 6, w: 5, o: 4, kh: 3, kw: 3, stride: [2]int{1, 1}, dil: [2]int{1, 1}, groups: 1},
		{name: "stride2 pad1", n: 2, c: 3, h: 7, w: 6, o: 4, kh: 3, kw: 3, stride: [2]int{2, 2}, pad: [2]int{1, 1}, dil: [2]int{1, 1}, groups: 1},
		{name: "pad2 dilation2", n: 2, c: 2, h: 6, w: 6, o: 3, kh: 3, kw: 3, stride: [2]int{1, 1}, pad: [2]int{2, 2}, dil: [2]int{2, 2}, groups: 1},
		{name: "groups2", n: 2, c: 4, h: 5, w: 5, o: 6, kh: 3, kw: 3, stride: [2]int{1, 1}, pad: [2]int{1, 1}, dil: [2]int{1, 1}, groups: 2},
		{name: "groups4", n: 1, c: 4, h: 5, w: 4, o: 8, kh: 2, kw: 2, stride: [2]int{2, 1}, pad: [2]int{0, 1}, dil: [2]int{1, 1}, groups: 4},
		{name: "depthwise", n: 2, c: 4, h: 5, w: 5, o: 4, kh: 3, kw: 3, stride: [2]int{1, 1}, pad: [2]int{1, 1}, dil: [2]int{1, 1}, groups: 4},
		{name: "non-square kernel", n: 2, c: 2, h: 6, w: 7, o: 3, kh: 2, kw: 3, stride: [2]int{2, 1}, pad: [2]int{1, 0}, dil: [2]int{1, 1}, groups: 1},
		{name: "mixed stride pad dilation", n: 1, c: 2, h: 9, w: 8, o: 2, kh: 3, kw: 2, stride: [2]int{2, 3}, pad: [2]int{2, 1}, dil: [2]int{2, 1}, groups: 1},
		{name: "1x1", n: 2, c: 3, h: 4, w: 3, o: 5, kh: 1, kw: 1, stride: [2]int{1, 1}, dil: [2]int{1, 1}, groups: 1},
		{name: "1x1 stride2", n: 2, c: 3, h: 5, w: 4, o: 2, kh: 1, kw: 1, stride: [2]int{2, 2}, dil: [2]int{1, 1}, groups: 1},
		{name: "7x7 pad3 stride2", n: 1, c: 2, h: 8, w: 9, o: 3, kh: 7, kw: 7, stride: [2]int{2, 2}, pad: [2]int{3, 3}, dil: [2]int{1, 1}, groups: 1},
		{name: "no bias", n: 2, c: 2, h: 4, w: 4, o: 3, kh: 3, kw: 3, stride: [2]int{1, 1}, pad: [2]int{1, 1}, dil: [2]int{1, 1}, groups: 1, noBias: true},
	}
	for _, cc := range cases {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			runGradCase(t, gradCase{batch: cc.n, build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
				a := ir.Attrs{Stride: cc.stride, Pad: cc.pad, Dilation: cc.dil, Groups: cc.groups}
				x := input(g, "x", cc.n, cc.c, cc.h, cc.w)
				w := param(g, "w", cc.o, cc.c/cc.groups, cc.kh, cc.kw)
				args := []*ir.Node{x, w}
				if !cc.noBias {
					args = append(args, param(g, "b", cc.o))
				}
				oh := ir.ConvOut(cc.h, cc.kh, cc.stride[0], cc.pad[0], cc.dil[0])
				ow := ir.ConvOut(cc.w, cc.kw, cc.stride[1], cc.pad[1], cc.dil[1])
				y := g.Add(ir.OpConv2D, ir.Shape{cc.n, cc.o, oh, ow}, a, args...)
				dy := input(g, "dy", cc.n, cc.o, oh, ow)
				grads := map[string]*ir.Node{
					"x": g.Add(ir.OpConv2DBackwardData, x.Shape.Clone(), a, dy, w),
					"w": g.Add(ir.OpConv2DBackwardFilter, w.Shape.Clone(), a, x, dy),
				}
				if !cc.noBias {
					grads["b"] = g.Add(ir.OpBiasGrad, ir.Shape{cc.o}, ir.Attrs{}, dy)
				}
				return y, dy, grads
			}})
		})
	}
}

func TestPoolGrad(t *testing.T) {
	cases := []struct {
		name    string
		op      ir.Op
		h, w    int
		k, s, p [2]int
	}{
		{"max non-overlapping", ir.OpMaxPool, 4, 6, [2]int{2, 2}, [2]int{2, 2}, [2]int{0, 0}},
		{"max overlapping k3 s2", ir.OpMaxPool, 7, 7, [2]int{3, 3}, [2]int{2, 2}, [2]int{0, 0}},
		{"max padded k3 s2 p1", ir.OpMaxPool, 6, 7, [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}},
		{"max padded k3 s1 p1", ir.OpMaxPool, 4, 4, [2]int{3, 3}, [2]int{1, 1}, [2]int{1, 1}},
		{"max non-square", ir.OpMaxPool, 5, 6, [2]int{2, 3}, [2]int{1, 2}, [2]int{1, 0}},
		{"avg non-overlapping", ir.OpAvgPool, 4, 6, [2]int{2, 2}, [2]int{2, 2}, [2]int{0, 0}},
		{"avg overlapping k3 s2", ir.OpAvgPool, 7, 7, [2]int{3, 3}, [2]int{2, 2}, [2]int{0, 0}},
		{"avg padded k3 s2 p1", ir.OpAvgPool, 6, 7, [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}},
		{"avg non-square", ir.OpAvgPool, 5, 6, [2]int{2, 3}, [2]int{1, 2}, [2]int{1, 0}},
	}
	for _, pc := range cases {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			const n, c = 2, 3
			runGradCase(t, gradCase{
				batch: n,
				build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
					a := ir.Attrs{Kernel: pc.k, Stride: pc.s, Pad: pc.p}
					x := input(g, "x", n, c, pc.h, pc.w)
					oh := ir.ConvOut(pc.h, pc.k[0], pc.s[0], pc.p[0], 1)
					ow := ir.ConvOut(pc.w, pc.k[1], pc.s[1], pc.p[1], 1)
					y := g.Add(pc.op, ir.Shape{n, c, oh, ow}, a, x)
					dy := input(g, "dy", n, c, oh, ow)
					var dx *ir.Node
					if pc.op == ir.OpMaxPool {
						dx = g.Add(ir.OpMaxPoolBackward, x.Shape.Clone(), a, x, dy)
					} else {
						dx = g.Add(ir.OpAvgPoolBackward, x.Shape.Clone(), a, dy)
					}
					return y, dy, map[string]*ir.Node{"x": dx}
				},
				adjust: func(feeds map[string]*eval.Tensor) { distinct(feeds["x"], 0.01, 7) },
			})
		})
	}
}

func TestBatchNormGrad(t *testing.T) {
	for _, shape := range []ir.Shape{{3, 2, 3, 2}, {5, 4}, {2, 3, 1, 1}} {
		t.Run(fmt.Sprintf("x%v", shape), func(t *testing.T) {
			t.Parallel()
			runGradCase(t, gradCase{batch: shape[0], build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
				a := ir.Attrs{Eps: 1e-3}
				ch := shape[1]
				x := input(g, "x", shape...)
				gamma, beta := param(g, "gamma", ch), param(g, "beta", ch)
				y := g.Add(ir.OpBatchNorm, shape.Clone(), a, x, gamma, beta, buffer(g, "mean", ch), buffer(g, "var", ch))
				dy := input(g, "dy", shape...)
				return y, dy, map[string]*ir.Node{
					"x":     g.Add(ir.OpBatchNormBackward, shape.Clone(), a, x, gamma, dy),
					"gamma": g.Add(ir.OpBatchNormBackwardGamma, ir.Shape{ch}, a, x, dy),
					"beta":  g.Add(ir.OpBiasGrad, ir.Shape{ch}, ir.Attrs{}, dy),
				}
			}})
		})
	}
}

// TestElementwiseGrad covers the ops whose backward takes the forward's
// output y (or nothing) rather than x.
func TestElementwiseGrad(t *testing.T) {
	unary := func(fwd, bwd ir.Op, a ir.Attrs, fromY bool) func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
		return func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			x := input(g, "x", 3, 2, 2, 3)
			y := g.Add(fwd, x.Shape.Clone(), a, x)
			dy := input(g, "dy", 3, 2, 2, 3)
			var dx *ir.Node
			if fromY {
				dx = g.Add(bwd, x.Shape.Clone(), a, y, dy)
			} else {
				dx = g.Add(bwd, x.Shape.Clone(), a, dy)
			}
			return y, dy, map[string]*ir.Node{"x": dx}
		}
	}
	offZero := func(feeds map[string]*eval.Tensor) { awayFrom(feeds["x"], 0.05, 0) }
	drop := func(keep float64, classic bool) ir.Attrs {
		return ir.Attrs{Keep: keep, Classic: classic, Seed: ir.NameSeed("drop")}
	}
	cases := []gradCase{
		{name: "relu", build: unary(ir.OpReLU, ir.OpReLUBackward, ir.Attrs{}, true), adjust: offZero},
		{name: "leakyrelu 0.1", build: unary(ir.OpLeakyReLU, ir.OpLeakyReLUBackward, ir.Attrs{Alpha: 0.1}, true), adjust: offZero},
		{name: "leakyrelu 0", build: unary(ir.OpLeakyReLU, ir.OpLeakyReLUBackward, ir.Attrs{Alpha: 0}, true), adjust: offZero},
		{name: "tanh", build: unary(ir.OpTanh, ir.OpTanhBackward, ir.Attrs{}, true)},
		{name: "sigmoid", build: unary(ir.OpSigmoid, ir.OpSigmoidBackward, ir.Attrs{}, true)},
		{name: "dropout inverted", build: unary(ir.OpDropout, ir.OpDropoutBackward, drop(0.6, false), false),
			opts: eval.Options{Step: 3, RunSeed: 99}},
		{name: "dropout classic", build: unary(ir.OpDropout, ir.OpDropoutBackward, drop(0.3, true), false),
			opts: eval.Options{Step: 1}},
		{name: "dropout keep 1", build: unary(ir.OpDropout, ir.OpDropoutBackward, drop(1, false), false)},
		{name: "scale", build: unary(ir.OpScale, ir.OpScale, ir.Attrs{Alpha: -2.5}, false)},
		{name: "add", build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			x1, x2 := input(g, "x1", 3, 4), input(g, "x2", 3, 4)
			y := g.Add(ir.OpAdd, ir.Shape{3, 4}, ir.Attrs{}, x1, x2)
			dy := input(g, "dy", 3, 4)
			return y, dy, map[string]*ir.Node{"x1": dy, "x2": dy}
		}},
		{name: "reshape", build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			x := input(g, "x", 3, 2, 2, 3)
			y := g.Add(ir.OpReshape, ir.Shape{3, 12}, ir.Attrs{}, x)
			dy := input(g, "dy", 3, 12)
			return y, dy, map[string]*ir.Node{"x": g.Add(ir.OpReshape, x.Shape.Clone(), ir.Attrs{}, dy)}
		}},
		{name: "softmax", build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			x := input(g, "x", 3, 5)
			y := g.Add(ir.OpSoftmax, ir.Shape{3, 5}, ir.Attrs{}, x)
			dy := input(g, "dy", 3, 5)
			return y, dy, map[string]*ir.Node{"x": g.Add(ir.OpSoftmaxBackward, ir.Shape{3, 5}, ir.Attrs{}, y, dy)}
		}},
		{name: "linear", build: func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			x, w, b := input(g, "x", 3, 5), param(g, "w", 4, 5), param(g, "b", 4)
			y := g.Add(ir.OpLinear, ir.Shape{3, 4}, ir.Attrs{}, x, w, b)
			dy := input(g, "dy", 3, 4)
			return y, dy, map[string]*ir.Node{
				"x": g.Add(ir.OpLinearBackwardData, ir.Shape{3, 5}, ir.Attrs{}, dy, w),
				"w": g.Add(ir.OpLinearBackwardWeight, ir.Shape{4, 5}, ir.Attrs{}, x, dy),
				"b": g.Add(ir.OpBiasGrad, ir.Shape{4}, ir.Attrs{}, dy),
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.batch = 3
			runGradCase(t, c)
		})
	}
}

func TestLossGrad(t *testing.T) {
	const n, k, dloss = 4, 5, 1.7
	loss := func(fwd, bwd ir.Op, a ir.Attrs) func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
		return func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			x, y := input(g, "x", n, k), labels(g, "y", k)
			l := g.Add(fwd, ir.Shape{}, a, x, y)
			d := constant(g, dloss)
			return l, d, map[string]*ir.Node{"x": g.Add(bwd, ir.Shape{n, k}, a, x, y, d)}
		}
	}
	reg := func(fwd, bwd ir.Op, a ir.Attrs) func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
		return func(g *ir.Graph) (*ir.Node, *ir.Node, map[string]*ir.Node) {
			w := param(g, "w", 3, 2, 2, 2)
			l := g.Add(fwd, ir.Shape{}, a, w)
			d := constant(g, dloss)
			return l, d, map[string]*ir.Node{"w": g.Add(bwd, w.Shape.Clone(), a, w, d)}
		}
	}
	// svmOffHinge moves every score at least 0.05 away from its hinge
	// s_j - s_y + margin = 0 (moving s_j only, so rows stay independent).
	svmOffHinge := func(feeds map[string]*eval.Tensor) {
		s, y := feeds["x"], feeds["y"]
		active, inactive := 0, 0
		for i := range n {
			yi := int(y.Data[i])
			for j := range k {
				if j == yi {
					continue
				}
				d := s.Data[i*k+j] - s.Data[i*k+yi] + 1
				if d > -0.05 && d < 0.05 {
					s.Data[i*k+j] += 0.1
					d += 0.1
				}
				if d > 0 {
					active++
				} else {
					inactive++
				}
			}
		}
		if active == 0 || inactive == 0 {
			panic(fmt.Sprintf("svm test scores have %d active and %d inactive hinges; pick another seed", active, inactive))
		}
	}
	cases := []gradCase{
		{name: "softmax cross-entropy", build: loss(ir.OpSoftmaxCrossEntropy, ir.OpSoftmaxCrossEntropyBackward, ir.Attrs{})},
		{name: "svm", build: loss(ir.OpSVMLoss, ir.OpSVMLossBackward, ir.Attrs{Margin: 1}), adjust: svmOffHinge},
		{name: "l2", build: reg(ir.OpL2, ir.OpL2Backward, ir.Attrs{Lambda: 0.3})},
		{name: "l1", build: reg(ir.OpL1, ir.OpL1Backward, ir.Attrs{Lambda: 0.3}),
			adjust: func(feeds map[string]*eval.Tensor) { awayFrom(feeds["w"], 0.05, 0) }},
		{name: "elastic net", build: reg(ir.OpElasticNet, ir.OpElasticNetBackward, ir.Attrs{Lambda: 0.3, Beta: 0.7}),
			adjust: func(feeds map[string]*eval.Tensor) { awayFrom(feeds["w"], 0.05, 0) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.batch = n
			runGradCase(t, c)
		})
	}
}
