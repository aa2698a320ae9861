package ir_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/linear"
	"github.com/cnnc/cnnc/models/mlp10"
	"github.com/cnnc/cnnc/models/vggsmall"
	"github.com/cnnc/cnnc/passes"
)

// The models of models/, declared again with the batch size as a
// parameter, so that a test can build "the same model with batch n" and
// compare it with WithBatch. TestZooCopies checks that each copy builds
// exactly the graph of the original at the original's batch size.

func lenet5At(batch int) *ir.Graph {
	b := ir.NewBuilder("lenet5", batch)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	h := b.ReLU(b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2)))
	h = b.MaxPool(h, 2)
	h = b.ReLU(b.Conv2D("conv2", h, 6, 16, 5))
	h = b.MaxPool(h, 2)
	h = b.Flatten(h)
	h = b.ReLU(b.Linear("fc1", h, 400, 120))
	h = b.ReLU(b.Linear("fc2", h, 120, 84))
	logits := b.Linear("fc3", h, 84, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

func lenet5bnAt(batch int) *ir.Graph {
	b := ir.NewBuilder("lenet5bn", batch)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	h := b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2), ir.NoBias())
	h = b.ReLU(b.BatchNorm("bn1", h, 6))
	h = b.MaxPool(h, 2)
	h = b.Conv2D("conv2", h, 6, 16, 5, ir.NoBias())
	h = b.ReLU(b.BatchNorm("bn2", h, 16))
	h = b.MaxPool(h, 2)
	h = b.Flatten(h)
	h = b.ReLU(b.Linear("fc1", h, 400, 120))
	h = b.ReLU(b.Linear("fc2", h, 120, 84))
	h = b.Dropout("drop1", h, 0.5)
	logits := b.Linear("fc3", h, 84, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

func vggsmallAt(batch int) *ir.Graph {
	b := ir.NewBuilder("vggsmall", batch)
	x := b.Input("x", 3, 32, 32)
	y := b.Labels("y", 10)
	cbr := func(name string, h *ir.Node, in, out int) *ir.Node {
		h = b.Conv2D("conv"+name, h, in, out, 3, ir.Pad(1), ir.NoBias())
		return b.ReLU(b.BatchNorm("bn"+name, h, out))
	}
	h := cbr("1", x, 3, 32)
	h = cbr("2", h, 32, 32)
	h = b.MaxPool(h, 2)
	h = cbr("3", h, 32, 64)
	h = cbr("4", h, 64, 64)
	h = b.MaxPool(h, 2)
	h = b.ReLU(b.Linear("fc1", b.Flatten(h), 4096, 256))
	h = b.Dropout("drop1", h, 0.5)
	logits := b.Linear("fc2", h, 256, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

func mlp10At(batch int) *ir.Graph {
	b := ir.NewBuilder("mlp10", batch)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	h, in := b.Flatten(x), 784
	for i := 1; i <= 10; i++ {
		h = b.Tanh(b.Linear(fmt.Sprintf("fc%d", i), h, in, 500))
		in = 500
	}
	logits := b.Linear("fc11", h, 500, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

func linearAt(name string, svm bool) func(batch int) *ir.Graph {
	return func(batch int) *ir.Graph {
		b := ir.NewBuilder(name, batch)
		x := b.Input("x", 1, 28, 28)
		y := b.Labels("y", 10)
		scores := b.Linear("fc", b.Flatten(x), 784, 10)
		b.Output("logits", scores)
		var data *ir.Node
		if svm {
			data = b.SVMLoss(scores, y)
		} else {
			data = b.SoftmaxCrossEntropy(scores, y)
		}
		b.Loss(b.Add(data, b.L2(1e-4, "fc.weight")))
		return b.Graph()
	}
}

// zoo lists every model function of models/ with its copy.
var zoo = []struct {
	name  string
	model func() *ir.Graph
	at    func(batch int) *ir.Graph
}{
	{"lenet5", lenet5.LeNet5, lenet5At},
	{"lenet5bn", lenet5.LeNet5BN, lenet5bnAt},
	{"vggsmall", vggsmall.VGGSmall, vggsmallAt},
	{"mlp10", mlp10.MLP10, mlp10At},
	{"softmax", linear.Softmax, linearAt("softmax", false)},
	{"svm", linear.SVM, linearAt("svm", true)},
}

// noPos returns a copy of g without positions, which differ between a
// model and its copy.
func noPos(g *ir.Graph) *ir.Graph {
	c := g.Clone()
	for _, n := range c.Nodes {
		n.Pos = ir.Pos{}
	}
	return c
}

func TestZooCopies(t *testing.T) {
	for _, m := range zoo {
		t.Run(m.name, func(t *testing.T) {
			g := m.model()
			require.NoError(t, g.Validate())
			assert.Empty(t, ir.DiffGraphs(noPos(g), noPos(m.at(g.Batch))), "the copy of %s in batch_test.go no longer matches models/", m.name)
		})
	}
}

// pipelines returns the graphs WithBatch must handle for a model: the
// model's own, its training and inference graphs, and (as "train-unscheduled")
// its training graph without the schedule pass.
func pipelines(t *testing.T, g *ir.Graph) map[string]*ir.Graph {
	t.Helper()
	gs := map[string]*ir.Graph{"model": g}
	for name, p := range map[string]passes.Pipeline{
		"train": passes.Train, "infer": passes.Infer, "train-unscheduled": without(passes.Train, "schedule"),
	} {
		out, err := p.Run(g, passes.Options{})
		require.NoError(t, err, name)
		gs[name] = out
	}
	return gs
}

// without returns p without the named pass.
func without(p passes.Pipeline, pass string) passes.Pipeline {
	q := passes.Pipeline{Name: p.Name}
	for _, ps := range p.Passes {
		if ps.Name != pass {
			q.Passes = append(q.Passes, ps)
		}
	}
	return q
}

// TestWithBatchZoo checks, for every model, its training graph and its
// inference graph, that WithBatch(n) gives the graph of the same model
// declared with batch n, shapes included, and that it validates. The
// schedule pass orders nodes by their sizes, so a training graph made for
// batch n may list its nodes in another order than one made for batch 64
// and rebatched: for those the test compares the nodes as a multiset.
func TestWithBatchZoo(t *testing.T) {
	for _, m := range zoo {
		g := m.model()
		have := pipelines(t, g)
		for _, n := range []int{1, 3, 64, 256} {
			want := pipelines(t, m.at(n))
			for _, kind := range []string{"model", "train-unscheduled", "infer", "train"} {
				t.Run(fmt.Sprintf("%s/%s/batch%d", m.name, kind, n), func(t *testing.T) {
					src := have[kind]
					before := text(t, src)
					got, err := src.WithBatch(n)
					require.NoError(t, err)
					require.NoError(t, got.Validate())
					assert.Equal(t, n, got.Batch)
					assert.Equal(t, before, text(t, src), "WithBatch changed its receiver")
					w := want[kind]
					require.Len(t, got.Nodes, len(w.Nodes))
					// Positions come from the model file, not from the copy.
					for i, node := range got.Nodes {
						assert.Equal(t, src.Nodes[i].Pos, node.Pos)
					}
					if kind == "train" {
						assert.Equal(t, signatures(w), signatures(got))
						return
					}
					for i := range w.Nodes {
						assert.True(t, w.Nodes[i].Shape.Equal(got.Nodes[i].Shape), "node %v has shape %v, want %v", w.Nodes[i], got.Nodes[i].Shape, w.Nodes[i].Shape)
					}
					assert.Empty(t, ir.DiffGraphs(noPos(w), noPos(got)))
				})
			}
		}
	}
}

// signatures lists every node as op, layer, shape and its arguments' ops,
// layers and shapes, sorted: what stays when the order changes.
func signatures(g *ir.Graph) []string {
	sig := func(n *ir.Node) string { return fmt.Sprintf("%v %q %v", n.Op, n.Layer, n.Shape) }
	var s []string
	for _, n := range g.Nodes {
		var args []string
		for _, a := range n.Args {
			args = append(args, sig(a))
		}
		s = append(s, sig(n)+" <- "+strings.Join(args, ", "))
	}
	sort.Strings(s)
	return s
}

// TestWithBatchAgreesWithBatched checks that the values WithBatch resizes
// are exactly those that Graph.Batched says carry the batch.
func TestWithBatchAgreesWithBatched(t *testing.T) {
	for _, m := range zoo {
		for kind, g := range pipelines(t, m.model()) {
			b, err := g.Batched()
			require.NoError(t, err, "%s/%s", m.name, kind)
			got, err := g.WithBatch(g.Batch + 1)
			require.NoError(t, err, "%s/%s", m.name, kind)
			for i, n := range g.Nodes {
				resized := !n.Shape.Equal(got.Nodes[i].Shape)
				assert.Equal(t, b[n], resized, "%s/%s: %v %v -> %v", m.name, kind, n, n.Shape, got.Nodes[i].Shape)
			}
		}
	}
}

func text(t *testing.T, g *ir.Graph) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, ir.Print(&b, g))
	return b.String()
}

func TestWithBatchErrors(t *testing.T) {
	// mixed builds x [4, 3] -> reshape [12] -> a loss-free graph whose
	// reshape folds the batch into the features.
	mixed := func() *ir.Graph {
		g := ir.NewGraph("mixed", 4)
		x := g.Add(ir.OpInput, ir.Shape{4, 3}, ir.Attrs{Name: "x"})
		r := g.Add(ir.OpReshape, ir.Shape{12}, ir.Attrs{}, x)
		g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutValue, Name: "flat", Node: r})
		return g
	}
	// bn1d is a batch-norm over [N, C], which needs two samples to train.
	bn1d := func() *ir.Graph {
		b := ir.NewBuilder("bn1d", 8)
		x := b.Input("x", 5)
		y := b.Labels("y", 5)
		h := b.BatchNorm("bn", b.Linear("fc", x, 5, 5), 5)
		b.Loss(b.SoftmaxCrossEntropy(h, y))
		return b.Graph()
	}
	bad := func() *ir.Graph {
		b := ir.NewBuilder("bad", 8)
		x := b.Input("x", 5)
		b.Output("y", b.Linear("fc", x, 4, 5))
		return b.Graph()
	}
	train := func(g *ir.Graph) *ir.Graph {
		tg, err := passes.Train.Run(g, passes.Options{})
		require.NoError(t, err)
		return tg
	}
	tests := []struct {
		name string
		g    *ir.Graph
		n    int
		want string
	}{
		{"zero", lenet5.LeNet5(), 0, "batch size is 0, want at least 1"},
		{"negative", lenet5.LeNet5(), -2, "batch size is -2, want at least 1"},
		{"invalid graph", bad(), 2, "input has 5 features, the layer expects 4"},
		{"reshape mixes the batch", mixed(), 2, "reshape: [4,3] -> [12] mixes the batch axis with others"},
		{"batch-norm of one sample", train(bn1d()), 1, "batch_test.go:"},
		{"batch-norm of one sample message", train(bn1d()), 1, "with a batch of 1: needs at least 2 values per channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.g.WithBatch(tt.n)
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	// The same graphs are fine where the batch allows.
	g, err := mixed().WithBatch(4)
	require.NoError(t, err)
	assert.Equal(t, ir.Shape{12}, g.Nodes[1].Shape)
	g, err = train(bn1d()).WithBatch(2)
	require.NoError(t, err)
	assert.Equal(t, 2, g.Batch)
}
