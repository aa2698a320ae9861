package passes_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/linear"
	"github.com/cnnc/cnnc/models/mlp10"
	"github.com/cnnc/cnnc/models/vggsmall"
	"github.com/cnnc/cnnc/passes"
)

// randomGraph builds a random valid model: a chain of layers drawn from
// every forward op, with residual adds where shapes allow, ending in a
// random loss.
func randomGraph(seed uint64) *ir.Graph {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := ir.NewBuilder("random", 1+r.IntN(4))
	c, h, w := 1+r.IntN(4), 5+r.IntN(5), 5+r.IntN(5)
	x := b.Input("x", c, h, w)
	y := b.Labels("y", 2+r.IntN(4))
	classes := y.Attrs.Classes
	layers := 2 + r.IntN(5)
	for i := range layers {
		name := fmt.Sprintf("l%d", i)
		hh, ww := x.Shape[2], x.Shape[3]
		switch layer := r.IntN(10); layer {
		case 0, 1, 9:
			groups := 1
			if c%2 == 0 && r.IntN(2) == 0 {
				groups = 2
			}
			out := groups * (1 + r.IntN(3))
			k := 1 + r.IntN(min(3, hh, ww))
			opts := []ir.Option{ir.Groups(groups), ir.Pad(r.IntN(2))}
			if r.IntN(3) == 0 {
				opts = append(opts, ir.Stride(2))
			}
			block := layer == 9 // conv, batch-norm, ReLU: fused in training
			if block || r.IntN(4) == 0 {
				opts = append(opts, ir.NoBias())
			}
			x = b.Conv2D(name, x, c, out, k, opts...)
			c = out
			if block {
				x = b.ReLU(b.BatchNorm(name+"bn", x, c))
			}
		case 2:
			if hh >= 3 && ww >= 3 {
				x = b.MaxPool(x, 2+r.IntN(2), ir.Stride(1+r.IntN(2)), ir.Pad(r.IntN(2)))
			}
		case 3:
			if hh >= 2 && ww >= 2 {
				x = b.AvgPool(x, 2, ir.Stride(1+r.IntN(2)), ir.Pad(r.IntN(2)))
			}
		case 4:
			x = b.BatchNorm(name, x, c)
		case 5:
			x = b.Dropout(name, x, 0.5+r.Float64()/2, optIf(r.IntN(2) == 0, ir.Classic())...)
		case 6:
			x = b.Add(x, b.Scale(b.Tanh(x), r.Float64()))
		case 7:
			x = b.LeakyReLU(x, r.Float64()/5)
		case 8:
			x = b.Sigmoid(x)
		}
	}
	f := b.Flatten(x)
	logits := b.Linear("fc", f, f.Shape[1], classes)
	b.Output("logits", logits)
	var loss *ir.Node
	if r.IntN(2) == 0 {
		loss = b.SoftmaxCrossEntropy(logits, y)
	} else {
		loss = b.SVMLoss(logits, y)
	}
	switch r.IntN(4) {
	case 0:
		loss = b.Add(loss, b.L2(0.01, "fc.weight"))
	case 1:
		loss = b.Add(loss, b.ElasticNet(0.01, 0.5, "fc.weight", "fc.bias"))
	}
	b.Loss(loss)
	return b.Graph()
}

func optIf(ok bool, o ir.Option) []ir.Option {
	if ok {
		return []ir.Option{o}
	}
	return nil
}

// testModels returns every model of the zoo and a set of random graphs.
// The VGG-style net and the MLP run at batch 2, which keeps the reference
// evaluator quick.
func testModels(t *testing.T) []*ir.Graph {
	gs := []*ir.Graph{lenet5.LeNet5(), lenet5.LeNet5BN(), linear.Softmax(), linear.SVM()}
	for _, g := range []*ir.Graph{vggsmall.VGGSmall(), mlp10.MLP10()} {
		small, err := g.WithBatch(2)
		require.NoError(t, err, g.Name)
		gs = append(gs, small)
	}
	for seed := range uint64(30) {
		g := randomGraph(seed)
		require.NoError(t, g.ValidateTraining(), "random graph %d", seed)
		g.Name = fmt.Sprintf("random%d", seed)
		gs = append(gs, g)
	}
	return gs
}

// TestPassesPreserveOutputs runs each pipeline pass by pass and checks
// that every pass that should not change what the graph computes leaves
// every output as it was (reference evaluator, 1e-5 relative).
func TestPassesPreserveOutputs(t *testing.T) {
	for _, g := range testModels(t) {
		for _, p := range passes.Pipelines {
			t.Run(g.Name+"/"+p.Name, func(t *testing.T) {
				feeds := eval.RandomFeeds(g, 3)
				opts := eval.Options{Step: 2, RunSeed: 5}
				var want map[string]*eval.Tensor
				cur := g
				for i, pass := range p.Passes {
					next, err := passes.Pipeline{Name: p.Name, Passes: p.Passes[i : i+1]}.Run(cur, passes.Options{})
					require.NoError(t, err, "pass %s", pass.Name)
					got, err := eval.Outputs(next, feeds, opts)
					require.NoError(t, err, "after %s", pass.Name)
					cur = next
					if pass.Name == "autodiff" || pass.Name == "lower-inference" || pass.Name == "verify" {
						// These define what the pipeline computes.
						want = got
						continue
					}
					require.Equal(t, len(want), len(got), "after %s: outputs changed", pass.Name)
					for key, w := range want {
						require.Contains(t, got, key, "after %s", pass.Name)
						require.NoError(t, eval.Close(got[key], w, 1e-5, 1e-9), "after %s: output %s", pass.Name, key)
					}
				}
			})
		}
	}
}

func TestPassOrder(t *testing.T) {
	for _, p := range passes.Pipelines {
		index := map[string]int{}
		for i, name := range p.Names() {
			index[name] = i
		}
		for _, o := range passes.PassOrder() {
			i, ok1 := index[o.Before]
			j, ok2 := index[o.After]
			if ok1 && ok2 {
				require.Less(t, i, j, "%s pipeline: %s must run before %s: %s", p.Name, o.Before, o.After, o.Why)
			}
		}
	}
}

func TestCSEMergesRepeatedWork(t *testing.T) {
	b := ir.NewBuilder("cse", 2)
	x := b.Input("x", 3)
	y := b.Labels("y", 3)
	a1 := b.Tanh(x)
	a2 := b.Tanh(x)
	logits := b.Linear("fc", b.Add(a1, a2), 3, 3)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	g := b.Graph()
	before := count(g, ir.OpTanh)
	require.Equal(t, 2, before)
	out, err := passes.Pipeline{Name: "t", Passes: []passes.Pass{{Name: "cse", Fn: passes.CSE}}}.Run(g, passes.Options{})
	require.NoError(t, err)
	require.Equal(t, 1, count(out, ir.OpTanh))
}

func TestFoldConstants(t *testing.T) {
	g := lenet5.LeNet5()
	train, err := passes.Autodiff(g)
	require.NoError(t, err)
	// The training graph before folding holds the seed; the cross-entropy
	// backward reads it directly, so nothing folds there, but scales of
	// scales and scale by one do.
	b := ir.NewBuilder("fold", 2)
	x := b.Input("x", 3)
	h := b.Scale(b.Scale(x, 2), 0.5)
	b.Output("logits", b.Add(h, h))
	g2 := b.Graph()
	out, err := passes.Pipeline{Name: "t", Passes: []passes.Pass{{Name: "fold", Fn: passes.FoldConstants}, {Name: "dce", Fn: passes.DCE}}}.Run(g2, passes.Options{})
	require.NoError(t, err)
	require.Equal(t, 0, count(out, ir.OpScale), "scale(scale(x, 2), 0.5) should fold to x")
	require.NotNil(t, train.Loss())
}

func count(g *ir.Graph, op ir.Op) int {
	n := 0
	for _, v := range g.Nodes {
		if v.Op == op {
			n++
		}
	}
	return n
}
