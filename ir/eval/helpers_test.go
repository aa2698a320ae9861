package eval_test

import (
	"math"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
)

// Helpers that add leaves to a hand-built graph.

func input(g *ir.Graph, name string, shape ...int) *ir.Node {
	return g.Add(ir.OpInput, ir.Shape(shape), ir.Attrs{Name: name})
}

func param(g *ir.Graph, name string, shape ...int) *ir.Node {
	return g.Add(ir.OpParam, ir.Shape(shape), ir.Attrs{Name: name, Init: ir.InitSpec{Scheme: "normal", Value: 1}})
}

func buffer(g *ir.Graph, name string, shape ...int) *ir.Node {
	return g.Add(ir.OpBuffer, ir.Shape(shape), ir.Attrs{Name: name, Init: ir.InitSpec{Scheme: "zeros"}})
}

func labels(g *ir.Graph, name string, classes int) *ir.Node {
	return g.Add(ir.OpLabels, ir.Shape{g.Batch}, ir.Attrs{Name: name, Classes: classes})
}

func constant(g *ir.Graph, v float64) *ir.Node {
	return g.Add(ir.OpConst, ir.Shape{}, ir.Attrs{Value: v})
}

func tensor(shape ir.Shape, data ...float64) *eval.Tensor {
	return eval.FromFloat64(shape, data)
}

// mustValidate fails the test if g does not validate.
func mustValidate(t *testing.T, g *ir.Graph) {
	t.Helper()
	if err := g.Validate(); err != nil {
		t.Fatalf("test graph %q is not valid: %v", g.Name, err)
	}
}

// awayFrom moves every element of t at least gap away from each kink.
func awayFrom(t *eval.Tensor, gap float64, kinks ...float64) {
	for i, v := range t.Data {
		for _, k := range kinks {
			if d := v - k; math.Abs(d) < gap {
				if d < 0 {
					v = k - gap - math.Abs(d)
				} else {
					v = k + gap + d
				}
			}
		}
		t.Data[i] = v
	}
}

// distinct overwrites t with distinct values, step apart, in a shuffled
// order, so that no max-pool window holds a tie.
func distinct(t *eval.Tensor, step float64, seed uint64) {
	n := len(t.Data)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(float64(eval.Uniform01(seed, 0, uint64(i))) * float64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	for i, p := range perm {
		t.Data[i] = (float64(p) - float64(n)/2) * step
	}
}
