package passes_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/linear"
	"github.com/cnnc/cnnc/passes"
)

// gradCase builds a small model whose gradients are checked against
// central finite differences of its loss.
type gradCase struct {
	name  string
	build func(b *ir.Builder) (logits *ir.Node)
	in    []int // per-sample input shape
	loss  string
}

func gradCases() []gradCase {
	conv := func(opts ...ir.Option) func(b *ir.Builder) *ir.Node {
		return func(b *ir.Builder) *ir.Node {
			x := b.Graph().Inputs()[0]
			h := b.Tanh(b.Conv2D("conv", x, 4, 4, 3, opts...))
			return b.Linear("fc", b.Flatten(h), h.Shape.Size()/h.Shape[0], 3)
		}
	}
	pool := func(max bool, k int, opts ...ir.Option) func(b *ir.Builder) *ir.Node {
		return func(b *ir.Builder) *ir.Node {
			x := b.Graph().Inputs()[0]
			h := b.Conv2D("conv", x, 4, 3, 1)
			if max {
				h = b.MaxPool(h, k, opts...)
			} else {
				h = b.AvgPool(h, k, opts...)
			}
			return b.Linear("fc", b.Flatten(h), h.Shape.Size()/h.Shape[0], 3)
		}
	}
	img := []int{4, 7, 7}
	return []gradCase{
		{name: "conv stride 1", build: conv(), in: img},
		{name: "conv stride 2 pad 1", build: conv(ir.Stride(2), ir.Pad(1)), in: img},
		{name: "conv dilation 2 pad 2", build: conv(ir.Dilation(2), ir.Pad(2)), in: img},
		{name: "conv groups 2", build: conv(ir.Groups(2), ir.Pad(1)), in: img},
		{name: "conv depthwise no bias", build: conv(ir.Groups(4), ir.NoBias()), in: img},
		{name: "conv asymmetric stride", build: conv(ir.Stride(1, 2), ir.Pad(0, 1)), in: img},
		{name: "maxpool 2", build: pool(true, 2), in: img},
		{name: "maxpool overlapping", build: pool(true, 3, ir.Stride(2)), in: img},
		{name: "maxpool padded", build: pool(true, 3, ir.Stride(2), ir.Pad(1)), in: img},
		{name: "avgpool 2", build: pool(false, 2), in: img},
		{name: "avgpool overlapping padded", build: pool(false, 3, ir.Stride(2), ir.Pad(1)), in: img},
		{name: "batchnorm 2d", in: img, build: func(b *ir.Builder) *ir.Node {
			h := b.Conv2D("conv", b.Graph().Inputs()[0], 4, 3, 3, ir.NoBias())
			h = b.Sigmoid(b.BatchNorm("bn", h, 3))
			return b.Linear("fc", b.Flatten(h), 75, 3)
		}},
		{name: "batchnorm 1d", in: []int{6}, build: func(b *ir.Builder) *ir.Node {
			h := b.Linear("fc1", b.Graph().Inputs()[0], 6, 5)
			h = b.LeakyReLU(b.BatchNorm("bn", h, 5, ir.Momentum(0.2)), 0.1)
			return b.Linear("fc2", h, 5, 3)
		}},
		{name: "dropout inverted", in: []int{6}, build: func(b *ir.Builder) *ir.Node {
			h := b.Tanh(b.Linear("fc1", b.Graph().Inputs()[0], 6, 8))
			return b.Linear("fc2", b.Dropout("drop", h, 0.6), 8, 3)
		}},
		{name: "dropout classic", in: []int{6}, build: func(b *ir.Builder) *ir.Node {
			h := b.Sigmoid(b.Linear("fc1", b.Graph().Inputs()[0], 6, 8))
			return b.Linear("fc2", b.Dropout("drop", h, 0.7, ir.Classic()), 8, 3)
		}},
		{name: "relu residual add scale", in: []int{5}, build: func(b *ir.Builder) *ir.Node {
			x := b.Graph().Inputs()[0]
			h := b.ReLU(b.Linear("fc1", x, 5, 5))
			h = b.Add(b.Scale(h, 0.5), x)
			return b.Linear("fc2", h, 5, 3)
		}},
		{name: "softmax then svm", in: []int{5}, loss: "svm", build: func(b *ir.Builder) *ir.Node {
			h := b.Softmax(b.Linear("fc1", b.Graph().Inputs()[0], 5, 4))
			return b.Scale(b.Linear("fc2", h, 4, 3), 3)
		}},
		{name: "l1 l2 elastic net", in: []int{5}, loss: "reg", build: func(b *ir.Builder) *ir.Node {
			return b.Linear("fc", b.Graph().Inputs()[0], 5, 3)
		}},
	}
}

func buildCase(c gradCase) *ir.Graph {
	b := ir.NewBuilder("grad", 3)
	b.Input("x", c.in...)
	y := b.Labels("y", 3)
	logits := c.build(b)
	b.Output("logits", logits)
	switch c.loss {
	case "svm":
		b.Loss(b.SVMLoss(logits, y))
	case "reg":
		loss := b.Add(b.SoftmaxCrossEntropy(logits, y), b.L2(0.3, "fc.weight"))
		loss = b.Add(loss, b.L1(0.2, "fc.weight", "fc.bias"))
		b.Loss(b.Add(loss, b.ElasticNet(0.1, 0.5, "fc.weight")))
	default:
		b.Loss(b.SoftmaxCrossEntropy(logits, y))
	}
	return b.Graph()
}

func TestAutodiffMatchesFiniteDifferences(t *testing.T) {
	for _, c := range gradCases() {
		t.Run(c.name, func(t *testing.T) {
			g := buildCase(c)
			require.NoError(t, g.ValidateTraining())
			checkGradients(t, g, 7)
		})
	}
}

func TestAutodiffModels(t *testing.T) {
	for _, g := range []*ir.Graph{lenet5.LeNet5(), lenet5.LeNet5BN(), linear.Softmax(), linear.SVM()} {
		t.Run(g.Name, func(t *testing.T) {
			train, err := passes.Autodiff(g)
			require.NoError(t, err)
			require.NoError(t, train.Validate())
			for _, p := range g.Params() {
				n := train.Output(ir.OutGrad, p.Attrs.Name)
				require.NotNil(t, n, "no gradient for %s", p.Attrs.Name)
				require.True(t, n.Shape.Equal(p.Shape))
			}
		})
	}
}

// checkGradients compares every parameter gradient and the input
// gradient of g's training graph with central differences of the loss.
func checkGradients(t *testing.T, g *ir.Graph, seed uint64) {
	t.Helper()
	train, err := passes.AutodiffInputs(g)
	require.NoError(t, err)
	feeds := eval.RandomFeeds(g, seed)
	opts := eval.Options{Step: 3, RunSeed: 11}
	got, err := eval.Outputs(train, feeds, opts)
	require.NoError(t, err)

	lossAt := func() float64 {
		out, err := eval.Outputs(g, feeds, opts)
		require.NoError(t, err)
		return out["loss:loss"].Data[0]
	}
	check := func(feed, key string) {
		grad := got[key]
		require.NotNil(t, grad, "no output %s", key)
		data := feeds[feed].Data
		const h = 1e-6
		for i := range data {
			old := data[i]
			data[i] = old + h
			up := lossAt()
			data[i] = old - h
			down := lossAt()
			data[i] = old
			fd := (up - down) / (2 * h)
			if diff := math.Abs(fd - grad.Data[i]); diff > 1e-6+1e-5*math.Abs(fd) {
				t.Errorf("%s[%d] = %.9g, finite differences give %.9g", key, i, grad.Data[i], fd)
				return
			}
		}
	}
	for _, p := range g.Params() {
		check(p.Attrs.Name, "grad:"+p.Attrs.Name)
	}
	for _, x := range g.Inputs() {
		check(x.Attrs.Name, fmt.Sprintf("value:grad.%s", x.Attrs.Name))
	}
}

func TestLowerInference(t *testing.T) {
	g := lenet5.LeNet5BN()
	infer, err := passes.LowerInference(g)
	require.NoError(t, err)
	for _, n := range infer.Nodes {
		require.NotEqual(t, ir.OpBatchNorm, n.Op, "batch-norm left in the inference graph")
		require.NotEqual(t, ir.OpDropout, n.Op, "dropout left in the inference graph")
		require.NotEqual(t, ir.OpLabels, n.Op, "labels left in the inference graph")
	}
	require.Len(t, infer.Outputs, 1)
	require.Equal(t, "logits", infer.Outputs[0].Name)

	// Classic dropout becomes a scale by the keep probability; inverted
	// dropout disappears.
	for _, classic := range []bool{false, true} {
		b := ir.NewBuilder("drop", 2)
		x := b.Input("x", 4)
		var opts []ir.Option
		if classic {
			opts = append(opts, ir.Classic())
		}
		b.Output("logits", b.Linear("fc", b.Dropout("drop", x, 0.25, opts...), 4, 2))
		g := b.Graph()
		infer, err := passes.LowerInference(g)
		require.NoError(t, err)
		feeds := eval.RandomFeeds(g, 1)
		got, err := eval.Outputs(infer, feeds, eval.Options{})
		require.NoError(t, err)
		// The reference: the same layer applied to the input scaled by
		// keep (classic) or as it is (inverted).
		scale := 1.0
		if classic {
			scale = 0.25
		}
		w, bias, in := feeds["fc.weight"].Data, feeds["fc.bias"].Data, feeds["x"].Data
		for n := range 2 {
			for o := range 2 {
				want := bias[o]
				for f := range 4 {
					want += w[o*4+f] * in[n*4+f] * scale
				}
				require.InDelta(t, want, got["value:logits"].Data[n*2+o], 1e-12)
			}
		}
	}
}

func TestPipelines(t *testing.T) {
	g := lenet5.LeNet5BN()
	train, err := passes.Train.Run(g, passes.Options{})
	require.NoError(t, err)
	require.NotNil(t, train.Loss())
	infer, err := passes.Infer.Run(g, passes.Options{})
	require.NoError(t, err)
	require.Nil(t, infer.Loss())
	_, err = passes.Train.Run(g, passes.Options{DumpAfter: []string{"nosuch"}})
	require.ErrorContains(t, err, `train pipeline has no pass "nosuch"; its passes are `+strings.Join(passes.Train.Names(), ", "))
}
