package passes

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// LowerInference returns the inference graph of a model: a copy of g in
// which batch-norm normalises with its running statistics, inverted
// dropout is the identity and classic dropout scales by its keep
// probability, and only value outputs remain. The model is left as it
// was.
func LowerInference(g *ir.Graph) (*ir.Graph, error) {
	t := g.Clone()
	if err := lowerInference(t); err != nil {
		return nil, err
	}
	return t, nil
}

func lowerInference(g *ir.Graph) error {
	for _, o := range g.Outputs {
		if o.Kind == ir.OutGrad {
			return fmt.Errorf("model %q is a training graph; lower the forward graph instead", g.Name)
		}
	}
	values := g.Outputs[:0]
	for _, o := range g.Outputs {
		if o.Kind == ir.OutValue {
			values = append(values, o)
		}
	}
	g.Outputs = values
	if len(values) == 0 {
		return fmt.Errorf("model %q has no outputs to predict; declare one with b.Output(\"logits\", logits)", g.Name)
	}

	for _, n := range append([]*ir.Node(nil), g.Nodes...) {
		switch n.Op {
		case ir.OpBatchNorm:
			n.Op = ir.OpBatchNormInfer
		case ir.OpDropout:
			if n.Attrs.Classic {
				scale := g.Add(ir.OpScale, n.Shape.Clone(), ir.Attrs{Alpha: n.Attrs.Keep}, n.Args[0])
				scale.Pos, scale.Layer = n.Pos, n.Layer
				g.ReplaceUses(n, scale)
			} else {
				g.ReplaceUses(n, n.Args[0])
			}
		}
	}
	g.Renumber()
	return nil
}
