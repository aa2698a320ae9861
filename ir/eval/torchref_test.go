package eval_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
)

// The files in testdata/torchref hold one float64 training step of four
// small models computed by PyTorch (see its README.md). These tests rebuild
// the models with the builder, differentiate them with a small reverse-mode
// helper that only strings together the backward ops, and compare every
// output, gradient and running statistic with PyTorch's.

// readSafetensors reads a safetensors file of F64 and I64 tensors.
func readSafetensors(path string) (map[string]*eval.Tensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) < 8 {
		return nil, fmt.Errorf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(raw)
	if 8+n > uint64(len(raw)) {
		return nil, fmt.Errorf("%s: header length %d is past the end", path, n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	data := raw[8+n:]
	out := map[string]*eval.Tensor{}
	for name, msg := range header {
		if name == "__metadata__" {
			continue
		}
		var info struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &info); err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, name, err)
		}
		t := eval.NewTensor(ir.Shape(info.Shape))
		b := data[info.Offsets[0]:info.Offsets[1]]
		if len(b) != 8*len(t.Data) {
			return nil, fmt.Errorf("%s: %s has %d bytes for shape %v", path, name, len(b), info.Shape)
		}
		for i := range t.Data {
			u := binary.LittleEndian.Uint64(b[8*i:])
			switch info.DType {
			case "F64":
				t.Data[i] = math.Float64frombits(u)
			case "I64":
				t.Data[i] = float64(int64(u))
			default:
				return nil, fmt.Errorf("%s: %s has dtype %s", path, name, info.DType)
			}
		}
		out[name] = t
	}
	return out, nil
}

// backward appends to g the gradient of loss with respect to every node it
// depends on, chaining the backward ops as the op table describes them, and
// returns the gradient node of each node.
func backward(t *testing.T, g *ir.Graph, loss *ir.Node) map[*ir.Node]*ir.Node {
	t.Helper()
	grads := map[*ir.Node]*ir.Node{loss: constant(g, 1)}
	acc := func(n, d *ir.Node) {
		if grads[n] == nil {
			grads[n] = d
		} else {
			grads[n] = g.Add(ir.OpAdd, n.Shape.Clone(), ir.Attrs{}, grads[n], d)
		}
	}
	add := func(op ir.Op, shape ir.Shape, a ir.Attrs, args ...*ir.Node) *ir.Node {
		return g.Add(op, shape.Clone(), a, args...)
	}
	forward := append([]*ir.Node(nil), g.Nodes...)
	for i := len(forward) - 1; i >= 0; i-- {
		n := forward[i]
		dy := grads[n]
		if dy == nil || n.Op.IsLeaf() {
			continue
		}
		a, x := n.Attrs, n.Args
		switch n.Op {
		case ir.OpAdd:
			acc(x[0], dy)
			acc(x[1], dy)
		case ir.OpSoftmaxCrossEntropy:
			acc(x[0], add(ir.OpSoftmaxCrossEntropyBackward, x[0].Shape, a, x[0], x[1], dy))
		case ir.OpSVMLoss:
			acc(x[0], add(ir.OpSVMLossBackward, x[0].Shape, a, x[0], x[1], dy))
		case ir.OpL2:
			acc(x[0], add(ir.OpL2Backward, x[0].Shape, a, x[0], dy))
		case ir.OpL1:
			acc(x[0], add(ir.OpL1Backward, x[0].Shape, a, x[0], dy))
		case ir.OpLinear:
			acc(x[0], add(ir.OpLinearBackwardData, x[0].Shape, a, dy, x[1]))
			acc(x[1], add(ir.OpLinearBackwardWeight, x[1].Shape, a, x[0], dy))
			if len(x) == 3 {
				acc(x[2], add(ir.OpBiasGrad, x[2].Shape, ir.Attrs{}, dy))
			}
		case ir.OpConv2D:
			acc(x[0], add(ir.OpConv2DBackwardData, x[0].Shape, a, dy, x[1]))
			acc(x[1], add(ir.OpConv2DBackwardFilter, x[1].Shape, a, x[0], dy))
			if len(x) == 3 {
				acc(x[2], add(ir.OpBiasGrad, x[2].Shape, ir.Attrs{}, dy))
			}
		case ir.OpReLU:
			acc(x[0], add(ir.OpReLUBackward, x[0].Shape, a, n, dy))
		case ir.OpLeakyReLU:
			acc(x[0], add(ir.OpLeakyReLUBackward, x[0].Shape, a, n, dy))
		case ir.OpTanh:
			acc(x[0], add(ir.OpTanhBackward, x[0].Shape, a, n, dy))
		case ir.OpSigmoid:
			acc(x[0], add(ir.OpSigmoidBackward, x[0].Shape, a, n, dy))
		case ir.OpMaxPool:
			acc(x[0], add(ir.OpMaxPoolBackward, x[0].Shape, a, x[0], dy))
		case ir.OpAvgPool:
			acc(x[0], add(ir.OpAvgPoolBackward, x[0].Shape, a, dy))
		case ir.OpReshape:
			acc(x[0], add(ir.OpReshape, x[0].Shape, a, dy))
		case ir.OpBatchNorm:
			acc(x[0], add(ir.OpBatchNormBackward, x[0].Shape, a, x[0], x[1], dy))
			acc(x[1], add(ir.OpBatchNormBackwardGamma, x[1].Shape, a, x[0], dy))
			acc(x[2], add(ir.OpBiasGrad, x[2].Shape, ir.Attrs{}, dy))
		case ir.OpDropout:
			acc(x[0], add(ir.OpDropoutBackward, x[0].Shape, a, dy))
		default:
			t.Fatalf("backward: no rule for %v", n)
		}
	}
	return grads
}

var torchModels = map[string]func() *ir.Graph{
	"lenet_bn": func() *ir.Graph {
		b := ir.NewBuilder("lenet_bn", 8)
		x := b.Input("x", 1, 28, 28)
		y := b.Labels("y", 10)
		h := b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2), ir.NoBias())
		h = b.MaxPool(b.ReLU(b.BatchNorm("bn1", h, 6)), 2)
		h = b.Conv2D("conv2", h, 6, 16, 5, ir.NoBias())
		h = b.MaxPool(b.ReLU(b.BatchNorm("bn2", h, 16)), 2)
		h = b.ReLU(b.Linear("fc1", b.Flatten(h), 400, 120))
		h = b.ReLU(b.Linear("fc2", h, 120, 84))
		logits := b.Linear("fc3", b.Dropout("drop1", h, 0.5), 84, 10)
		b.Output("logits", logits)
		b.Loss(b.SoftmaxCrossEntropy(logits, y))
		return b.Graph()
	},
	"strided": func() *ir.Graph {
		b := ir.NewBuilder("strided", 4)
		x := b.Input("x", 3, 16, 16)
		y := b.Labels("y", 10)
		h := b.LeakyReLU(b.Conv2D("conv1", x, 3, 8, 3, ir.Stride(2), ir.Pad(1)), 0.1)
		h = b.Tanh(b.Conv2D("conv2", h, 8, 16, 3, ir.Stride(2), ir.Pad(1), ir.Groups(2)))
		h = b.BatchNorm("bn3", b.Flatten(b.AvgPool(h, 2)), 64)
		logits := b.Linear("fc2", b.Sigmoid(b.Linear("fc1", h, 64, 32)), 32, 10)
		b.Output("logits", logits)
		b.Loss(b.Add(b.SoftmaxCrossEntropy(logits, y), b.L2(0.01, "fc1.weight")))
		return b.Graph()
	},
	"svm_linear": func() *ir.Graph {
		b := ir.NewBuilder("svm_linear", 16)
		x := b.Input("x", 1, 28, 28)
		y := b.Labels("y", 10)
		logits := b.Linear("fc", b.Flatten(x), 784, 10)
		b.Output("logits", logits)
		b.Loss(b.Add(b.SVMLoss(logits, y), b.L1(0.001, "fc.weight")))
		return b.Graph()
	},
	"overlap_pool": func() *ir.Graph {
		b := ir.NewBuilder("overlap_pool", 3)
		x := b.Input("x", 2, 11, 11)
		y := b.Labels("y", 10)
		h := b.ReLU(b.Conv2D("conv1", x, 2, 4, 3, ir.Dilation(2), ir.Pad(2)))
		h = b.MaxPool(h, 3, ir.Stride(2), ir.Pad(1))
		h = b.Sigmoid(b.Conv2D("conv2", h, 4, 6, 1))
		h = b.AvgPool(h, 3, ir.Stride(2), ir.Pad(1))
		logits := b.Linear("fc", b.Flatten(h), 54, 10)
		b.Output("logits", logits)
		b.Loss(b.SoftmaxCrossEntropy(logits, y))
		return b.Graph()
	},
}

func TestTorchReference(t *testing.T) {
	const rtol, atol = 1e-9, 1e-12
	for name, model := range torchModels {
		t.Run(name, func(t *testing.T) {
			ref, err := readSafetensors(filepath.Join("..", "..", "testdata", "torchref", name+".safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			g := model()
			mustValidate(t, g)
			feeds := map[string]*eval.Tensor{"x": ref["x"], "y": ref["labels"]}
			for _, n := range append(g.Params(), g.Buffers()...) {
				feeds[n.Attrs.Name] = ref[n.Attrs.Name]
			}
			grads := backward(t, g, g.Loss())
			for _, n := range g.Params() {
				g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutGrad, Name: n.Attrs.Name, Node: grads[n]})
			}
			// A gradient output must name a parameter: the input's is a value.
			g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutValue, Name: "dx", Node: grads[g.Inputs()[0]]})
			mustValidate(t, g)
			out, err := eval.Outputs(g, feeds, eval.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for key, got := range out {
				kind, what, _ := strings.Cut(key, ":")
				refName := map[string]string{"value": "out.", "loss": "out.", "grad": "grad.", "update": "after."}[kind] + what
				if key == "value:dx" {
					refName = "grad.x"
				}
				want := ref[refName]
				if want == nil {
					t.Errorf("no reference %q for output %q", refName, key)
					continue
				}
				if err := eval.Close(got, want, rtol, atol); err != nil {
					t.Errorf("%s against PyTorch's %s: %v", key, refName, err)
				}
				checked++
			}
			t.Logf("%d outputs agree with PyTorch", checked)

			// Inference: batch-norm with the running statistics after the
			// step, no dropout.
			if want := ref["eval.logits"]; want != nil {
				ig := model()
				for _, n := range ig.Nodes {
					switch n.Op {
					case ir.OpBatchNorm:
						n.Op = ir.OpBatchNormInfer
					case ir.OpDropout:
						n.Op, n.Attrs = ir.OpScale, ir.Attrs{Alpha: 1}
					}
				}
				for _, n := range ig.Buffers() {
					feeds[n.Attrs.Name] = ref["after."+n.Attrs.Name]
				}
				out, err := eval.Outputs(ig, feeds, eval.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := eval.Close(out["value:logits"], want, rtol, atol); err != nil {
					t.Errorf("inference logits against PyTorch's eval.logits: %v", err)
				}
			}
		})
	}
}
