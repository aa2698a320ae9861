// Package cudacheck checks the CUDA target against the reference
// evaluator: it compiles a model with codegen/cuda, runs it through
// runtime/cuda on a device (a GPU, or the CPU emulator of the tests) and
// compares the logits, the loss, every gradient and buffer update and an
// SGD step with package ir/eval in float64, for full and partial batches.
//
// The tests of codegen/cuda use it with the emulator; the device check
// program (testdata/device/cudacheck) uses it on a real GPU.
package cudacheck

import (
	"fmt"
	"math"
	"sort"

	"github.com/cnnc/cnnc/codegen/cuda"
	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/linear"
	"github.com/cnnc/cnnc/models/mlp10"
	"github.com/cnnc/cnnc/models/vggsmall"
	"github.com/cnnc/cnnc/passes"
	"github.com/cnnc/cnnc/runtime"
	cudart "github.com/cnnc/cnnc/runtime/cuda"
)

// A Case is a model to check, with the batch it is compiled for.
type Case struct {
	Name  string
	Batch int
	Build func(batch int) (*ir.Graph, error)
	TF32  bool // compile with cuda.Config.TF32
}

// WithTF32 returns c compiled with TF32 tensor-core convolutions, named
// apart.
func (c Case) WithTF32() Case {
	c.Name += "_tf32"
	c.TF32 = true
	return c
}

// TF32Variants returns, for each of cases whose graph has a convolution,
// its WithTF32.
func TF32Variants(cases []Case) ([]Case, error) {
	var out []Case
	for _, c := range cases {
		g, err := c.Build(c.Batch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		for _, n := range g.Nodes {
			if n.Op == ir.OpConv2D {
				out = append(out, c.WithTF32())
				break
			}
		}
	}
	return out, nil
}

// model returns a Case for a model of the zoo, rebatched.
func model(name string, f func() *ir.Graph, batch int) Case {
	return Case{Name: name, Batch: batch, Build: func(b int) (*ir.Graph, error) { return Rebatch(f(), b) }}
}

// Models returns the models of the zoo at their batch of 64.
func Models() []Case {
	return []Case{
		model("lenet5", lenet5.LeNet5, 64),
		model("lenet5bn", lenet5.LeNet5BN, 64),
		model("softmax", linear.Softmax, 64),
		model("svm", linear.SVM, 64),
		model("mlp10", mlp10.MLP10, 64),
		model("vggsmall", vggsmall.VGGSmall, 64),
	}
}

// Ops returns small models that together use every op of the table, with
// the strides, paddings, dilations, groups and pool shapes that have their
// own index arithmetic.
func Ops() []Case {
	conv := func(opts ...ir.Option) func(b *ir.Builder, x *ir.Node) *ir.Node {
		return func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Tanh(b.Conv2D("conv", x, 4, 4, 3, opts...))
			return b.Linear("fc", b.Flatten(h), h.Shape.Size()/h.Shape[0], 3)
		}
	}
	pool := func(max bool, k int, opts ...ir.Option) func(b *ir.Builder, x *ir.Node) *ir.Node {
		return func(b *ir.Builder, x *ir.Node) *ir.Node {
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
	vec := []int{6}
	cases := []struct {
		name string
		in   []int
		loss string
		body func(b *ir.Builder, x *ir.Node) *ir.Node
	}{
		{"conv_stride1", img, "", conv()},
		{"conv_stride2_pad1", img, "", conv(ir.Stride(2), ir.Pad(1))},
		{"conv_dilation2_pad2", img, "", conv(ir.Dilation(2), ir.Pad(2))},
		{"conv_groups2", img, "", conv(ir.Groups(2), ir.Pad(1))},
		{"conv_depthwise_nobias", img, "", conv(ir.Groups(4), ir.NoBias())},
		{"conv_asymmetric", img, "", conv(ir.Stride(1, 2), ir.Pad(0, 1))},
		{"maxpool2", img, "", pool(true, 2)},
		{"maxpool_overlap", img, "", pool(true, 3, ir.Stride(2))},
		{"maxpool_padded", img, "", pool(true, 3, ir.Stride(2), ir.Pad(1))},
		{"avgpool2", img, "", pool(false, 2)},
		{"avgpool_overlap_padded", img, "", pool(false, 3, ir.Stride(2), ir.Pad(1))},
		{"batchnorm2d", img, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Conv2D("conv", x, 4, 3, 3, ir.NoBias())
			h = b.Sigmoid(b.BatchNorm("bn", h, 3))
			return b.Linear("fc", b.Flatten(h), 75, 3)
		}},
		{"batchnorm2d_relu", img, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Conv2D("conv", x, 4, 5, 3, ir.Pad(1))
			h = b.ReLU(b.BatchNorm("bn", h, 5, ir.Eps(1e-3)))
			return b.Linear("fc", b.Flatten(h), 245, 3)
		}},
		{"conv_bn_relu", img, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			// Two fused blocks: the first has no input gradient, the
			// second, grouped and strided, has one.
			h := b.Conv2D("conv1", x, 4, 6, 3, ir.Pad(1), ir.NoBias())
			h = b.ReLU(b.BatchNorm("bn1", h, 6))
			h = b.Conv2D("conv2", h, 6, 4, 3, ir.Stride(2), ir.Pad(1), ir.Groups(2), ir.NoBias())
			h = b.ReLU(b.BatchNorm("bn2", h, 4, ir.Momentum(0.3)))
			return b.Linear("fc", b.Flatten(h), 64, 3)
		}},
		{"batchnorm1d", vec, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Linear("fc1", x, 6, 5)
			h = b.LeakyReLU(b.BatchNorm("bn", h, 5, ir.Momentum(0.2)), 0.1)
			return b.Linear("fc2", h, 5, 3)
		}},
		{"dropout_inverted", vec, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Tanh(b.Linear("fc1", x, 6, 8))
			return b.Linear("fc2", b.Dropout("drop", h, 0.6), 8, 3)
		}},
		{"dropout_classic", vec, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Sigmoid(b.Linear("fc1", x, 6, 8))
			return b.Linear("fc2", b.Dropout("drop", h, 0.7, ir.Classic()), 8, 3)
		}},
		{"relu_residual_add_scale", []int{5}, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.ReLU(b.Linear("fc1", x, 5, 5))
			h = b.Add(b.Scale(h, 0.5), x)
			return b.Linear("fc2", h, 5, 3)
		}},
		{"softmax_svm", []int{5}, "svm", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.Softmax(b.Linear("fc1", x, 5, 4))
			return b.Scale(b.Linear("fc2", h, 4, 3), 3)
		}},
		{"penalties", []int{5}, "reg", func(b *ir.Builder, x *ir.Node) *ir.Node {
			return b.Linear("fc", x, 5, 3)
		}},
		{"conv_large", []int{2, 64, 64}, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			// Products with enough rows for the largest tiles, 4 and 8
			// outputs a thread in both directions, and long reductions
			// that split.
			h := b.ReLU(b.Conv2D("conv1", x, 2, 32, 3, ir.Pad(1)))
			h = b.Tanh(b.Conv2D("conv2", h, 32, 64, 3, ir.Stride(2), ir.Pad(1)))
			h = b.MaxPool(h, 4)
			return b.Linear("fc", b.Flatten(h), 4096, 3)
		}},
		{"linear_wide", []int{40}, "", func(b *ir.Builder, x *ir.Node) *ir.Node {
			h := b.ReLU(b.Linear("fc1", x, 40, 70))
			return b.Linear("fc2", h, 70, 3)
		}},
	}
	var out []Case
	for _, c := range cases {
		out = append(out, Case{Name: c.name, Batch: 5, Build: func(batch int) (*ir.Graph, error) {
			b := ir.NewBuilder(c.name, batch)
			x := b.Input("x", c.in...)
			y := b.Labels("y", 3)
			logits := c.body(b, x)
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
			g := b.Graph()
			return g, g.ValidateTraining()
		}})
	}
	return out
}

// Rebatch returns a copy of the model g compiled for batch n: the input,
// the labels and every value computed from them get n as axis 0.
func Rebatch(g *ir.Graph, n int) (*ir.Graph, error) {
	if n < 1 {
		return nil, fmt.Errorf("rebatch %s: batch %d, want at least 1", g.Name, n)
	}
	c := g.Clone()
	batched := map[*ir.Node]bool{}
	for _, nd := range c.Nodes {
		switch {
		case nd.Op == ir.OpInput || nd.Op == ir.OpLabels:
			batched[nd] = true
		case nd.Op.IsLeaf() || nd.Op.ReducesBatch() || len(nd.Shape) == 0:
		default:
			for _, a := range nd.Args {
				batched[nd] = batched[nd] || batched[a]
			}
		}
		if batched[nd] {
			if len(nd.Shape) == 0 || nd.Shape[0] != g.Batch {
				return nil, fmt.Errorf("rebatch %s: %v has shape %v without the batch %d as axis 0", g.Name, nd, nd.Shape, g.Batch)
			}
			nd.Shape[0] = n
		}
	}
	c.Batch = n
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("rebatch %s: %w", g.Name, err)
	}
	return c, nil
}

// Compile builds the training and inference graphs of c at batch and
// compiles them for the GPU.
func Compile(c Case, batch int) (*cuda.Program, error) {
	g, err := c.Build(batch)
	if err != nil {
		return nil, err
	}
	train, err := passes.Train.Run(g, passes.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	infer, err := passes.Infer.Run(g, passes.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	// The prefix names the batch too, so that one program may hold the
	// kernels of several batches (as the emulator's does).
	return cuda.Build(train, infer, cuda.Config{Package: c.Name, Prefix: fmt.Sprintf("cnnc_%s_b%d_", c.Name, batch), TF32: c.TF32})
}

// A Result is the comparison of one output with the reference.
type Result struct {
	Key   string  // "value:logits", "loss:loss", "grad:conv1.weight", "sgd:conv1.weight", ...
	N     int     // samples in the call
	Err   float64 // max |got - want| / max(max |want|, Floor)
	Scale float64 // max |want|
	Tol   float64
}

// OK reports whether the result is within tolerance.
func (r Result) OK() bool { return r.Err <= r.Tol }

func (r Result) String() string {
	verdict := "ok"
	if !r.OK() {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%-4s n=%-3d %-34s err %.2e (tol %.0e, scale %.3g)", verdict, r.N, r.Key, r.Err, r.Tol, r.Scale)
}

// Tol is the tolerance of every comparison with the reference, relative to
// the largest element of the reference tensor or to Floor if that is
// smaller (a gradient that is zero in exact arithmetic, such as that of a
// bias before a batch-norm, is float32 rounding noise on the device).
const (
	Tol   = 1e-3
	Floor = 1e-3
)

// Compare compiles c at batch, makes the model on dev with the given
// source and plan and compares one inference pass and one training step
// on n samples, and two SGD steps, with the reference evaluator on random
// inputs and parameters drawn from seed.
func Compare(dev *cudart.Device, c Case, prog *cuda.Program, n int, seed uint64) ([]Result, error) {
	m, err := cudart.NewModel(dev, prog.Source, prog.Plan, seed)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	g, err := c.Build(n)
	if err != nil {
		return nil, err
	}
	train, err := passes.Train.Run(g, passes.Options{})
	if err != nil {
		return nil, err
	}
	infer, err := passes.Infer.Run(g, passes.Options{})
	if err != nil {
		return nil, err
	}

	// Random parameters, buffers, inputs and labels, rounded to float32 so
	// that both sides start from the same numbers.
	feeds := eval.RandomFeeds(train, seed)
	for _, t := range feeds {
		for i, v := range t.Data {
			t.Data[i] = float64(float32(v))
		}
	}
	state, err := m.State()
	if err != nil {
		return nil, err
	}
	for _, p := range state {
		f := feeds[p.Name]
		if f == nil {
			return nil, fmt.Errorf("%s: no feed for %s", c.Name, p.Name)
		}
		copy(p.Data, f.Float32())
	}
	if err := m.SyncToDevice(); err != nil {
		return nil, err
	}
	xf := feeds[train.Inputs()[0].Attrs.Name]
	lf := feeds[train.LabelsNode().Attrs.Name]
	x := xf.Float32()
	labels := make([]int32, len(lf.Data))
	for i, v := range lf.Data {
		labels[i] = int32(v)
	}

	var results []Result
	add := func(key string, got []float32, want *eval.Tensor, tol float64) {
		results = append(results, compare(key, n, got, want.Data, tol))
	}

	// Inference first, with the buffers as drawn.
	want, err := eval.Outputs(infer, feeds, eval.Options{})
	if err != nil {
		return nil, err
	}
	logits, err := m.Infer(x)
	if err != nil {
		return nil, err
	}
	add("infer value:logits", logits, want["value:logits"], Tol)

	// One training step: step 0, the run seed is the model's seed.
	want, err = eval.Outputs(train, feeds, eval.Options{Step: 0, RunSeed: seed})
	if err != nil {
		return nil, err
	}
	loss, err := m.Train(x, labels)
	if err != nil {
		return nil, err
	}
	add("returned loss", []float32{loss}, want["loss:loss"], Tol)
	for _, key := range sortedKeys(want) {
		got, err := m.Read(key)
		if err != nil {
			return nil, err
		}
		add(key, got, want[key], Tol)
	}

	// Two SGD steps (the first starts the momentum) against runtime.SGD on
	// copies of the parameters and of the device's gradients.
	params, err := m.Params()
	if err != nil {
		return nil, err
	}
	host := make([]*runtime.Param, len(params))
	for i, p := range params {
		q := runtime.NewParam(p.Name, p.Shape, true)
		copy(q.Data, p.Data)
		copy(q.Grad, p.Grad)
		host[i] = q
	}
	opt := runtime.NewSGD(host, 0.05, 0.9, true, 1e-3)
	for range 2 {
		opt.Step()
		if err := m.SGDStep(0.05, 0.9, true, 1e-3); err != nil {
			return nil, err
		}
	}
	params, err = m.Params()
	if err != nil {
		return nil, err
	}
	for i, p := range params {
		w := make([]float64, len(host[i].Data))
		for j, v := range host[i].Data {
			w[j] = float64(v)
		}
		results = append(results, compare("sgd:"+p.Name, n, p.Data, w, 1e-6))
	}
	return results, nil
}

// compare returns the norm-wise error of got against want.
func compare(key string, n int, got []float32, want []float64, tol float64) Result {
	r := Result{Key: key, N: n, Tol: tol}
	if len(got) != len(want) {
		r.Err = math.Inf(1)
		return r
	}
	diff := 0.0
	for i, w := range want {
		r.Scale = math.Max(r.Scale, math.Abs(w))
		d := math.Abs(float64(got[i]) - w)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		diff = math.Max(diff, d)
	}
	r.Err = diff / math.Max(r.Scale, Floor)
	if diff == 0 {
		r.Err = 0
	}
	return r
}

func sortedKeys(m map[string]*eval.Tensor) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
