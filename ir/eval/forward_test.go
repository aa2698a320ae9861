package eval_test

import (
	"math"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
)

// A fwdCase evaluates one node of a small graph on given feeds and compares
// it with values worked out by hand.
type fwdCase struct {
	name  string
	batch int
	opts  eval.Options
	build func(g *ir.Graph) *ir.Node
	feeds map[string]*eval.Tensor
	want  *eval.Tensor
}

func seq(from, to float64) []float64 {
	var v []float64
	for x := from; x <= to; x++ {
		v = append(v, x)
	}
	return v
}

func TestForward(t *testing.T) {
	conv := func(stride, pad, dil [2]int, groups int, shape ir.Shape, bias bool) func(g *ir.Graph) *ir.Node {
		return func(g *ir.Graph) *ir.Node {
			x := g.Nodes[0]
			args := []*ir.Node{x, g.Nodes[1]}
			if bias {
				args = append(args, g.Nodes[2])
			}
			return g.Add(ir.OpConv2D, shape, ir.Attrs{Stride: stride, Pad: pad, Dilation: dil, Groups: groups}, args...)
		}
	}
	// leaves adds the leaves a build function expects, in order, and
	// returns the build function.
	leaves := func(add func(g *ir.Graph), build func(g *ir.Graph) *ir.Node) func(g *ir.Graph) *ir.Node {
		return func(g *ir.Graph) *ir.Node { add(g); return build(g) }
	}
	convLeaves := func(x, w ir.Shape, bias bool) func(g *ir.Graph) {
		return func(g *ir.Graph) {
			input(g, "x", x...)
			param(g, "w", w...)
			if bias {
				param(g, "b", w[0])
			}
		}
	}
	pool := func(op ir.Op, k, s, p [2]int, shape ir.Shape) func(g *ir.Graph) *ir.Node {
		return func(g *ir.Graph) *ir.Node {
			return g.Add(op, shape, ir.Attrs{Kernel: k, Stride: s, Pad: p}, input(g, "x", g.Batch, 1, 4, 4))
		}
	}
	x44 := tensor(ir.Shape{1, 1, 4, 4},
		1, 2, 5, 3,
		4, 0, 6, 7,
		9, 8, 1, 1,
		2, 3, 4, 0)
	bnLeaves := func(g *ir.Graph, x ir.Shape) []*ir.Node {
		c := x[1]
		return []*ir.Node{input(g, "x", x...), param(g, "gamma", c), param(g, "beta", c), buffer(g, "mean", c), buffer(g, "var", c)}
	}
	bnFeeds := func(x *eval.Tensor, gamma, beta, mean, variance []float64) map[string]*eval.Tensor {
		c := ir.Shape{len(gamma)}
		return map[string]*eval.Tensor{"x": x, "gamma": tensor(c, gamma...), "beta": tensor(c, beta...),
			"mean": tensor(c, mean...), "var": tensor(c, variance...)}
	}
	bn4 := tensor(ir.Shape{4, 1}, 1, 2, 3, 4)
	sd := math.Sqrt(1.25 + 1e-5)
	scores := func(op ir.Op, a ir.Attrs, k int) func(g *ir.Graph) *ir.Node {
		return func(g *ir.Graph) *ir.Node {
			return g.Add(op, ir.Shape{}, a, input(g, "s", g.Batch, k), labels(g, "y", k))
		}
	}
	reg := func(op ir.Op, a ir.Attrs) func(g *ir.Graph) *ir.Node {
		return func(g *ir.Graph) *ir.Node { return g.Add(op, ir.Shape{}, a, param(g, "w", 3)) }
	}
	w3 := map[string]*eval.Tensor{"w": tensor(ir.Shape{3}, 1, -2, 3)}
	dropLeaves := func(a ir.Attrs) func(g *ir.Graph) *ir.Node {
		return func(g *ir.Graph) *ir.Node { return g.Add(ir.OpDropout, ir.Shape{1, 8}, a, input(g, "x", 1, 8)) }
	}
	ones8 := map[string]*eval.Tensor{"x": tensor(ir.Shape{1, 8}, 1, 1, 1, 1, 1, 1, 1, 1)}
	drop1 := ir.NameSeed("drop1")

	cases := []fwdCase{
		{
			// Padded 5x5 input, 2x2 windows at (-1,-1), (-1,1), (1,-1), (1,1).
			name: "conv pad1 stride2 bias", batch: 1,
			build: leaves(convLeaves(ir.Shape{1, 1, 3, 3}, ir.Shape{1, 1, 2, 2}, true),
				conv([2]int{2, 2}, [2]int{1, 1}, [2]int{1, 1}, 1, ir.Shape{1, 1, 2, 2}, true)),
			feeds: map[string]*eval.Tensor{
				"x": tensor(ir.Shape{1, 1, 3, 3}, seq(1, 9)...),
				"w": tensor(ir.Shape{1, 1, 2, 2}, 1, 2, 3, 4),
				"b": tensor(ir.Shape{1}, 0.5),
			},
			want: tensor(ir.Shape{1, 1, 2, 2}, 4*1+0.5, 3*2+4*3+0.5, 2*4+4*7+0.5, 5+2*6+3*8+4*9+0.5),
		},
		{
			name: "conv channels sum", batch: 1,
			build: leaves(convLeaves(ir.Shape{1, 2, 2, 2}, ir.Shape{2, 2, 2, 2}, false),
				conv([2]int{1, 1}, [2]int{0, 0}, [2]int{1, 1}, 1, ir.Shape{1, 2, 1, 1}, false)),
			feeds: map[string]*eval.Tensor{
				"x": tensor(ir.Shape{1, 2, 2, 2}, seq(1, 8)...),
				"w": tensor(ir.Shape{2, 2, 2, 2}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, -1),
			},
			want: tensor(ir.Shape{1, 2, 1, 1}, 36, 1-8),
		},
		{
			name: "conv groups 2, 1x1", batch: 1,
			build: leaves(convLeaves(ir.Shape{1, 2, 2, 2}, ir.Shape{4, 1, 1, 1}, false),
				conv([2]int{1, 1}, [2]int{0, 0}, [2]int{1, 1}, 2, ir.Shape{1, 4, 2, 2}, false)),
			feeds: map[string]*eval.Tensor{
				"x": tensor(ir.Shape{1, 2, 2, 2}, seq(1, 8)...),
				"w": tensor(ir.Shape{4, 1, 1, 1}, 2, 3, -1, 10),
			},
			// Output channels 0, 1 read input channel 0; 2, 3 read channel 1.
			want: tensor(ir.Shape{1, 4, 2, 2}, 2, 4, 6, 8, 3, 6, 9, 12, -5, -6, -7, -8, 50, 60, 70, 80),
		},
		{
			name: "conv dilation 2", batch: 1,
			build: leaves(convLeaves(ir.Shape{1, 1, 3, 3}, ir.Shape{1, 1, 2, 2}, false),
				conv([2]int{1, 1}, [2]int{0, 0}, [2]int{2, 2}, 1, ir.Shape{1, 1, 1, 1}, false)),
			feeds: map[string]*eval.Tensor{
				"x": tensor(ir.Shape{1, 1, 3, 3}, seq(1, 9)...),
				"w": tensor(ir.Shape{1, 1, 2, 2}, 1, 10, 100, 1000),
			},
			want: tensor(ir.Shape{1, 1, 1, 1}, 1+10*3+100*7+1000*9),
		},
		{
			name: "maxpool k2 s2", batch: 1,
			build: pool(ir.OpMaxPool, [2]int{2, 2}, [2]int{2, 2}, [2]int{0, 0}, ir.Shape{1, 1, 2, 2}),
			feeds: map[string]*eval.Tensor{"x": x44},
			want:  tensor(ir.Shape{1, 1, 2, 2}, 4, 7, 9, 4),
		},
		{
			name: "maxpool k3 s2 p1", batch: 1,
			build: pool(ir.OpMaxPool, [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, ir.Shape{1, 1, 2, 2}),
			feeds: map[string]*eval.Tensor{"x": x44},
			// Windows rows/cols {-1,0,1}, {1,2,3}.
			want: tensor(ir.Shape{1, 1, 2, 2}, 4, 7, 9, 8),
		},
		{
			name: "maxpool padding is -Inf", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpMaxPool, ir.Shape{1, 1, 2, 2}, ir.Attrs{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Pad: [2]int{1, 1}}, input(g, "x", 1, 1, 2, 2))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{1, 1, 2, 2}, -1, -2, -3, -4)},
			want:  tensor(ir.Shape{1, 1, 2, 2}, -1, -1, -1, -1),
		},
		{
			// Windows {1,5} and {5,5}: both pick the first 5 (index 1).
			name: "maxpool backward ties go to the first maximum", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				a := ir.Attrs{Kernel: [2]int{1, 2}, Stride: [2]int{1, 1}}
				return g.Add(ir.OpMaxPoolBackward, ir.Shape{1, 1, 1, 3}, a, input(g, "x", 1, 1, 1, 3), input(g, "dy", 1, 1, 1, 2))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{1, 1, 1, 3}, 1, 5, 5), "dy": tensor(ir.Shape{1, 1, 1, 2}, 10, 100)},
			want:  tensor(ir.Shape{1, 1, 1, 3}, 0, 110, 0),
		},
		{
			name: "maxpool backward 2x2 tie", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				a := ir.Attrs{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}}
				return g.Add(ir.OpMaxPoolBackward, ir.Shape{1, 1, 2, 2}, a, input(g, "x", 1, 1, 2, 2), input(g, "dy", 1, 1, 1, 1))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{1, 1, 2, 2}, 3, 7, 7, 7), "dy": tensor(ir.Shape{1, 1, 1, 1}, 2)},
			want:  tensor(ir.Shape{1, 1, 2, 2}, 0, 2, 0, 0),
		},
		{
			name: "avgpool k2 s2", batch: 1,
			build: pool(ir.OpAvgPool, [2]int{2, 2}, [2]int{2, 2}, [2]int{0, 0}, ir.Shape{1, 1, 2, 2}),
			feeds: map[string]*eval.Tensor{"x": x44},
			want:  tensor(ir.Shape{1, 1, 2, 2}, 7.0/4, 21.0/4, 22.0/4, 6.0/4),
		},
		{
			name: "avgpool k3 s1 p1 counts the padding", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				a := ir.Attrs{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Pad: [2]int{1, 1}}
				return g.Add(ir.OpAvgPool, ir.Shape{1, 1, 3, 3}, a, input(g, "x", 1, 1, 3, 3))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{1, 1, 3, 3}, 9, 9, 9, 9, 9, 9, 9, 9, 9)},
			want:  tensor(ir.Shape{1, 1, 3, 3}, 4, 6, 4, 6, 9, 6, 4, 6, 4),
		},
		{
			name: "avgpool backward k3 s1 p1", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				a := ir.Attrs{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Pad: [2]int{1, 1}}
				return g.Add(ir.OpAvgPoolBackward, ir.Shape{1, 1, 2, 2}, a, input(g, "dy", 1, 1, 2, 2))
			},
			feeds: map[string]*eval.Tensor{"dy": tensor(ir.Shape{1, 1, 2, 2}, 9, 18, 27, 36)},
			// Every window covers the whole 2x2 input.
			want: tensor(ir.Shape{1, 1, 2, 2}, 10, 10, 10, 10),
		},
		{
			name: "batchnorm 1d", batch: 4,
			build: func(g *ir.Graph) *ir.Node {
				l := bnLeaves(g, ir.Shape{4, 1})
				return g.Add(ir.OpBatchNorm, ir.Shape{4, 1}, ir.Attrs{Eps: 1e-5}, l...)
			},
			feeds: bnFeeds(bn4, []float64{2}, []float64{0.5}, []float64{100}, []float64{100}),
			want:  tensor(ir.Shape{4, 1}, -1.5/sd*2+0.5, -0.5/sd*2+0.5, 0.5/sd*2+0.5, 1.5/sd*2+0.5),
		},
		{
			// Channel 0 holds 1, 3, 5, 7 (mean 4, variance 5); channel 1 is
			// constant, so it normalises to beta.
			name: "batchnorm 2d", batch: 2,
			build: func(g *ir.Graph) *ir.Node {
				l := bnLeaves(g, ir.Shape{2, 2, 1, 2})
				return g.Add(ir.OpBatchNorm, ir.Shape{2, 2, 1, 2}, ir.Attrs{Eps: 1e-5}, l...)
			},
			feeds: bnFeeds(tensor(ir.Shape{2, 2, 1, 2}, 1, 3, 2, 2, 5, 7, 2, 2), []float64{1, 3}, []float64{0, -1}, []float64{0, 0}, []float64{1, 1}),
			want: func() *eval.Tensor {
				s := math.Sqrt(5 + 1e-5)
				return tensor(ir.Shape{2, 2, 1, 2}, -3/s, -1/s, -1, -1, 1/s, 3/s, -1, -1)
			}(),
		},
		{
			name: "batchnorm infer", batch: 4,
			build: func(g *ir.Graph) *ir.Node {
				l := bnLeaves(g, ir.Shape{4, 1})
				return g.Add(ir.OpBatchNormInfer, ir.Shape{4, 1}, ir.Attrs{Eps: 1}, l...)
			},
			feeds: bnFeeds(bn4, []float64{2}, []float64{0.5}, []float64{1}, []float64{3}),
			want:  tensor(ir.Shape{4, 1}, 0.5, 1.5, 2.5, 3.5),
		},
		{
			name: "running mean", batch: 4,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpRunningMean, ir.Shape{1}, ir.Attrs{Momentum: 0.1}, input(g, "x", 4, 1), buffer(g, "mean", 1))
			},
			feeds: map[string]*eval.Tensor{"x": bn4, "mean": tensor(ir.Shape{1}, 1)},
			want:  tensor(ir.Shape{1}, 0.9*1+0.1*2.5),
		},
		{
			// The batch variance is 1.25 biased, 5/3 unbiased.
			name: "running var is unbiased", batch: 4,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpRunningVar, ir.Shape{1}, ir.Attrs{Momentum: 0.1}, input(g, "x", 4, 1), buffer(g, "var", 1))
			},
			feeds: map[string]*eval.Tensor{"x": bn4, "var": tensor(ir.Shape{1}, 2)},
			want:  tensor(ir.Shape{1}, 0.9*2+0.1*5.0/3),
		},
		{
			name: "softmax is stable", batch: 2,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpSoftmax, ir.Shape{2, 2}, ir.Attrs{}, input(g, "x", 2, 2))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{2, 2}, 1000, 1000, -1000, -1000+math.Log(3))},
			want:  tensor(ir.Shape{2, 2}, 0.5, 0.5, 0.25, 0.75),
		},
		{
			name: "cross-entropy is stable", batch: 2,
			build: scores(ir.OpSoftmaxCrossEntropy, ir.Attrs{}, 2),
			feeds: map[string]*eval.Tensor{"s": tensor(ir.Shape{2, 2}, 1000, 0, 0, 0), "y": tensor(ir.Shape{2}, 1, 0)},
			want:  tensor(ir.Shape{}, (1000+math.Ln2)/2),
		},
		{
			name: "cross-entropy backward", batch: 2,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpSoftmaxCrossEntropyBackward, ir.Shape{2, 2}, ir.Attrs{}, input(g, "s", 2, 2), labels(g, "y", 2), constant(g, 4))
			},
			feeds: map[string]*eval.Tensor{"s": tensor(ir.Shape{2, 2}, 0, math.Log(3), 5, 5), "y": tensor(ir.Shape{2}, 1, 0)},
			want:  tensor(ir.Shape{2, 2}, 4*0.25/2, 4*(0.75-1)/2, 4*(0.5-1)/2, 4*0.5/2),
		},
		{
			// Row 0: max(0, 2-1+1) + max(0, 3-1+1) = 5; row 1: 0.
			name: "svm loss", batch: 2,
			build: scores(ir.OpSVMLoss, ir.Attrs{Margin: 1}, 3),
			feeds: map[string]*eval.Tensor{"s": tensor(ir.Shape{2, 3}, 1, 2, 3, 3, 2, 1), "y": tensor(ir.Shape{2}, 0, 0)},
			want:  tensor(ir.Shape{}, 2.5),
		},
		{
			name: "svm loss backward", batch: 2,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpSVMLossBackward, ir.Shape{2, 3}, ir.Attrs{Margin: 1}, input(g, "s", 2, 3), labels(g, "y", 3), constant(g, 2))
			},
			feeds: map[string]*eval.Tensor{"s": tensor(ir.Shape{2, 3}, 1, 2, 3, 3, 2.5, 1), "y": tensor(ir.Shape{2}, 0, 0)},
			want:  tensor(ir.Shape{2, 3}, -2, 1, 1, -1, 1, 0),
		},
		{name: "l2", batch: 1, build: reg(ir.OpL2, ir.Attrs{Lambda: 0.5}), feeds: w3, want: tensor(ir.Shape{}, 7)},
		{name: "l1", batch: 1, build: reg(ir.OpL1, ir.Attrs{Lambda: 0.5}), feeds: w3, want: tensor(ir.Shape{}, 3)},
		{name: "elastic net", batch: 1, build: reg(ir.OpElasticNet, ir.Attrs{Lambda: 0.5, Beta: 2}), feeds: w3, want: tensor(ir.Shape{}, 17)},
		{
			name: "l1 backward sign(0) is 0", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpL1Backward, ir.Shape{3}, ir.Attrs{Lambda: 0.5}, param(g, "w", 3), constant(g, 2))
			},
			feeds: map[string]*eval.Tensor{"w": tensor(ir.Shape{3}, -3, 0, 2)},
			want:  tensor(ir.Shape{3}, -1, 0, 1),
		},
		{
			// The mask for drop1, step 0, is 1,0,0,0,0,1,0,1 (see TestUniform01).
			name: "dropout inverted", batch: 1,
			build: dropLeaves(ir.Attrs{Keep: 0.5, Seed: drop1}),
			feeds: ones8,
			want:  tensor(ir.Shape{1, 8}, 2, 0, 0, 0, 0, 2, 0, 2),
		},
		{
			name: "dropout classic", batch: 1,
			build: dropLeaves(ir.Attrs{Keep: 0.5, Classic: true, Seed: drop1}),
			feeds: ones8,
			want:  tensor(ir.Shape{1, 8}, 1, 0, 0, 0, 0, 1, 0, 1),
		},
		{
			// Uniform01 of these indices is below 0.75 except for 2, 4, 6.
			name: "dropout keep 0.75", batch: 1,
			build: dropLeaves(ir.Attrs{Keep: 0.75, Seed: drop1}),
			feeds: ones8,
			want:  tensor(ir.Shape{1, 8}, 4.0/3, 4.0/3, 0, 4.0/3, 0, 4.0/3, 0, 4.0/3),
		},
		{
			name: "dropout xors the run seed into the seed", batch: 1,
			opts:  eval.Options{RunSeed: 5},
			build: dropLeaves(ir.Attrs{Keep: 0.5, Classic: true, Seed: drop1 ^ 5}),
			feeds: ones8,
			want:  tensor(ir.Shape{1, 8}, 1, 0, 0, 0, 0, 1, 0, 1),
		},
		{
			name: "const", batch: 1,
			build: func(g *ir.Graph) *ir.Node { return g.Add(ir.OpConst, ir.Shape{2, 2}, ir.Attrs{Value: -1.5}) },
			want:  tensor(ir.Shape{2, 2}, -1.5, -1.5, -1.5, -1.5),
		},
		{
			name: "reshape keeps row-major order", batch: 2,
			build: func(g *ir.Graph) *ir.Node {
				return g.Add(ir.OpReshape, ir.Shape{2, 3}, ir.Attrs{}, input(g, "x", 2, 3, 1, 1))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{2, 3, 1, 1}, seq(1, 6)...)},
			want:  tensor(ir.Shape{2, 3}, seq(1, 6)...),
		},
		{
			name: "activations", batch: 1,
			build: func(g *ir.Graph) *ir.Node {
				x := input(g, "x", 1, 3)
				r := g.Add(ir.OpReLU, ir.Shape{1, 3}, ir.Attrs{}, x)
				l := g.Add(ir.OpLeakyReLU, ir.Shape{1, 3}, ir.Attrs{Alpha: 0.1}, x)
				s := g.Add(ir.OpScale, ir.Shape{1, 3}, ir.Attrs{Alpha: 10}, g.Add(ir.OpSigmoid, ir.Shape{1, 3}, ir.Attrs{}, x))
				th := g.Add(ir.OpTanh, ir.Shape{1, 3}, ir.Attrs{}, x)
				return g.Add(ir.OpAdd, ir.Shape{1, 3}, ir.Attrs{}, g.Add(ir.OpAdd, ir.Shape{1, 3}, ir.Attrs{}, r, l),
					g.Add(ir.OpAdd, ir.Shape{1, 3}, ir.Attrs{}, s, th))
			},
			feeds: map[string]*eval.Tensor{"x": tensor(ir.Shape{1, 3}, -2, 0, 3)},
			want: tensor(ir.Shape{1, 3},
				0-0.2+10/(1+math.Exp(2))+math.Tanh(-2),
				5,
				3+3+10/(1+math.Exp(-3))+math.Tanh(3)),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := ir.NewGraph("fwd", c.batch)
			out := c.build(g)
			mustValidate(t, g)
			vals, err := eval.Run(g, c.feeds, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := eval.Close(vals[out.ID], c.want, 1e-12, 1e-12); err != nil {
				t.Errorf("%s: %v", out.Op, err)
			}
		})
	}
}
