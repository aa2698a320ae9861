package passes_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/passes"
	"github.com/cnnc/cnnc/runtime"
)

// The models of testdata/torchref/make_ref.py, declared with the builder.
// Each test loads the file's parameters and inputs, runs the reference
// evaluator on the training graph, and compares every output with
// PyTorch's.

func torchLeNetBN() *ir.Graph {
	b := ir.NewBuilder("lenet_bn", 8)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("labels", 10)
	h := b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2), ir.NoBias())
	h = b.MaxPool(b.ReLU(b.BatchNorm("bn1", h, 6)), 2)
	h = b.Conv2D("conv2", h, 6, 16, 5, ir.NoBias())
	h = b.MaxPool(b.ReLU(b.BatchNorm("bn2", h, 16)), 2)
	h = b.ReLU(b.Linear("fc1", b.Flatten(h), 400, 120))
	h = b.ReLU(b.Linear("fc2", h, 120, 84))
	h = b.Dropout("drop1", h, 0.5)
	logits := b.Linear("fc3", h, 84, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

func torchStrided() *ir.Graph {
	b := ir.NewBuilder("strided", 4)
	x := b.Input("x", 3, 16, 16)
	y := b.Labels("labels", 10)
	h := b.LeakyReLU(b.Conv2D("conv1", x, 3, 8, 3, ir.Stride(2), ir.Pad(1)), 0.1)
	h = b.Tanh(b.Conv2D("conv2", h, 8, 16, 3, ir.Stride(2), ir.Pad(1), ir.Groups(2)))
	h = b.Flatten(b.AvgPool(h, 2))
	h = b.BatchNorm("bn3", h, 64)
	h = b.Sigmoid(b.Linear("fc1", h, 64, 32))
	logits := b.Linear("fc2", h, 32, 10)
	b.Output("logits", logits)
	b.Loss(b.Add(b.SoftmaxCrossEntropy(logits, y), b.L2(0.01, "fc1.weight")))
	return b.Graph()
}

func torchSVMLinear() *ir.Graph {
	b := ir.NewBuilder("svm_linear", 16)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("labels", 10)
	scores := b.Linear("fc", b.Flatten(x), 784, 10)
	b.Output("logits", scores)
	b.Loss(b.Add(b.SVMLoss(scores, y), b.L1(0.001, "fc.weight")))
	return b.Graph()
}

func torchOverlapPool() *ir.Graph {
	b := ir.NewBuilder("overlap_pool", 3)
	x := b.Input("x", 2, 11, 11)
	y := b.Labels("labels", 10)
	h := b.ReLU(b.Conv2D("conv1", x, 2, 4, 3, ir.Dilation(2), ir.Pad(2)))
	h = b.MaxPool(h, 3, ir.Stride(2), ir.Pad(1))
	h = b.Sigmoid(b.Conv2D("conv2", h, 4, 6, 1))
	h = b.AvgPool(h, 3, ir.Stride(2), ir.Pad(1))
	logits := b.Linear("fc", b.Flatten(h), 54, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

func TestTorchReference(t *testing.T) {
	tests := []struct {
		file  string
		model func() *ir.Graph
	}{
		{"lenet_bn", torchLeNetBN},
		{"strided", torchStrided},
		{"svm_linear", torchSVMLinear},
		{"overlap_pool", torchOverlapPool},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			g := tt.model()
			require.NoError(t, g.ValidateTraining())
			ref, _, err := runtime.LoadTensors(filepath.Join("..", "testdata", "torchref", tt.file+".safetensors"))
			require.NoError(t, err)
			tensor := func(name string, shape ir.Shape) *eval.Tensor {
				r, ok := ref[name]
				require.True(t, ok, "reference has no tensor %q", name)
				out := eval.NewTensor(shape)
				require.Equal(t, shape.Size(), len(r.F32)+len(r.I64), "tensor %q: %v elements, want %v", name, len(r.F32)+len(r.I64), shape.Size())
				for i := range out.Data {
					if r.I64 != nil {
						out.Data[i] = float64(r.I64[i])
					} else {
						out.Data[i] = float64(r.F32[i])
					}
				}
				return out
			}
			feeds := map[string]*eval.Tensor{}
			for _, n := range g.Nodes {
				if n.Op.IsLeaf() && n.Op != ir.OpConst {
					feeds[n.Attrs.Name] = tensor(n.Attrs.Name, n.Shape)
				}
			}
			train, err := passes.AutodiffInputs(g)
			require.NoError(t, err)
			got, err := eval.Outputs(train, feeds, eval.Options{})
			require.NoError(t, err)

			// The file's tensors are float32 copies of float64 values, so
			// the comparison is at float32 precision.
			const rtol, atol = 1e-4, 1e-6
			check := func(key, refName string) {
				t.Helper()
				g, ok := got[key]
				require.True(t, ok, "training graph has no output %q", key)
				require.NoError(t, eval.Close(g, tensor(refName, g.Shape), rtol, atol), "%s vs %s", key, refName)
			}
			check("value:logits", "out.logits")
			check("loss:loss", "out.loss")
			check("value:grad.x", "grad.x")
			for _, p := range g.Params() {
				check("grad:"+p.Attrs.Name, "grad."+p.Attrs.Name)
			}
			for _, buf := range g.Buffers() {
				check("update:"+buf.Attrs.Name, "after."+buf.Attrs.Name)
			}

			if _, ok := ref["eval.logits"]; ok {
				infer, err := passes.LowerInference(g)
				require.NoError(t, err)
				for _, buf := range g.Buffers() {
					feeds[buf.Attrs.Name] = tensor("after."+buf.Attrs.Name, buf.Shape)
				}
				out, err := eval.Outputs(infer, feeds, eval.Options{})
				require.NoError(t, err)
				require.NoError(t, eval.Close(out["value:logits"], tensor("eval.logits", out["value:logits"].Shape), rtol, atol))
			}
			for key := range got {
				require.False(t, strings.HasPrefix(key, "grad:") && got[key] == nil)
			}
		})
	}
}
