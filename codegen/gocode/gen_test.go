package gocode

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/linear"
	"github.com/cnnc/cnnc/passes"
	"github.com/stretchr/testify/require"
)

var (
	update   = flag.Bool("update", false, "rewrite the golden files")
	genBench = flag.Bool("genbench", false, "TestGenerated also runs the benchmarks of the generated lenet5 package")
	keepGen  = flag.Bool("keepgen", false, "TestGenerated keeps the generated packages under testdata")
)

// modulePath is the import path of the directory this test runs in.
const modulePath = "github.com/cnnc/cnnc/codegen/gocode"

// A genCase is one model the generated code is checked on.
type genCase struct {
	name    string
	graph   func() *ir.Graph
	partial int // samples of the partial-batch check
	// noRows: no weight's gradient goes to an optimiser by rows: the
	// linear layer's is the product's plus a penalty's in the graph, which
	// an add writes.
	noRows bool
}

var genCases = []genCase{
	{"lenet5", lenet5.LeNet5, 37, false},
	{"lenet5bn", lenet5.LeNet5BN, 9, false},
	{"softmax", linear.Softmax, 5, true},
	{"svm", linear.SVM, 3, true},
	{"convmix", convMix, 3, false},
	{"bigkernel", bigKernel, 2, false},
	{"strided", strided, 3, false},
	{"lenet5b1", batch1(lenet5.LeNet5BN), 1, false},
	{"convmixb1", batch1(convMix), 1, false},
	{"bigconvb1", bigConv, 1, false},
	{"convbn", convBN, 3, false},
	{"convbnb1", batch1(convBN), 1, false},
	{"convbn16", convBN16, 2, false},
	{"convdata16", convData16, 2, false},
	{"convdata16b1", batch1(convData16), 1, false},
	{"widefc", wideFC, 3, false},
	{"pixconv", pixConv, 2, false},
}

// convData16 has stride-1 convolutions of inputs 16 wide, whose input
// gradients are convolutions of the padded output gradient with the
// flipped weight (implicitData): padded and not, grouped, with a bias and
// fused with batch-norm.
func convData16() *ir.Graph {
	b := ir.NewBuilder("convdata16", 3)
	x := b.Input("x", 3, 5, 16)
	y := b.Labels("y", 4)
	h := b.ReLU(b.Conv2D("conv1", x, 3, 4, 3, ir.Pad(1)))                                    // 4x5x16
	h = b.ReLU(b.Conv2D("conv2", h, 4, 6, 3, ir.Pad(1), ir.Groups(2)))                       // 6x5x16
	h = b.ReLU(b.BatchNorm("bn3", b.Conv2D("conv3", h, 6, 5, 5, ir.Pad(2), ir.NoBias()), 5)) // 5x5x16
	h = b.Tanh(b.Conv2D("conv4", h, 5, 3, 3))                                                // 3x3x14
	logits := b.Linear("fc", b.Flatten(h), 126, 4)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// convBN16 has convolutions whose outputs are 16 wide at stride 1, whose
// forward GEMMs pack their panels straight from the input
// (gemm.SgemmIm2col), as do their filter gradients (gemm.SgemmIm2colT): a
// padded one and a grouped, dilated one, both fused with batch-norm and
// ReLU; then 2x2 max pooling of an odd number of rows, whose last row gets
// no gradient.
func convBN16() *ir.Graph {
	b := ir.NewBuilder("convbn16", 3)
	x := b.Input("x", 4, 7, 16)
	y := b.Labels("y", 3)
	h := b.ReLU(b.BatchNorm("bn1", b.Conv2D("conv1", x, 4, 6, 3, ir.Pad(1), ir.NoBias()), 6))                              // 6x7x16
	h = b.ReLU(b.BatchNorm("bn2", b.Conv2D("conv2", h, 6, 4, 3, ir.Groups(2), ir.Dilation(2), ir.Pad(2), ir.NoBias()), 4)) // 4x7x16
	h = b.Flatten(b.MaxPool(h, 2))                                                                                         // 4x3x8
	logits := b.Linear("fc", h, 96, 3)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// convBN has convolutions, batch-norms and ReLUs that the training
// pipeline fuses: a strided, padded first layer (no input gradient), a
// grouped and dilated one, and a 1x1 one.
func convBN() *ir.Graph {
	b := ir.NewBuilder("convbn", 5)
	x := b.Input("x", 3, 11, 10)
	y := b.Labels("y", 4)
	block := func(name string, h *ir.Node, in, out, k int, opts ...ir.Option) *ir.Node {
		h = b.Conv2D("conv"+name, h, in, out, k, append(opts, ir.NoBias())...)
		return b.ReLU(b.BatchNorm("bn"+name, h, out))
	}
	h := block("1", x, 3, 6, 3, ir.Stride(2), ir.Pad(1))                // 6x6x5
	h = block("2", h, 6, 4, 3, ir.Groups(2), ir.Dilation(2), ir.Pad(2)) // 4x6x5
	h = block("3", h, 4, 5, 1)                                          // 5x6x5
	h = b.Flatten(h)
	logits := b.Linear("fc", h, 150, 4)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// bigConv has batch 1 and convolutions big enough (over parallelFlops) for
// their GEMMs to be split over the pool, forward and backward.
func bigConv() *ir.Graph {
	b := ir.NewBuilder("bigconv", 1)
	x := b.Input("x", 8, 16, 16)
	y := b.Labels("y", 4)
	h := b.ReLU(b.Conv2D("conv1", x, 8, 32, 3, ir.Pad(1))) // 32x16x16: 1.2 MFLOP
	h = b.ReLU(b.Conv2D("conv2", h, 32, 16, 3, ir.Pad(1))) // 16x16x16: 2.4 MFLOP
	h = b.MaxPool(h, 2)                                    // 16x8x8
	h = b.Flatten(h)
	logits := b.Linear("fc", h, 1024, 4)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// batch1 returns the model compiled for one sample, as for latency
// (cnnc compile -batch 1): one slot per convolution, big GEMMs split over
// the pool inside the sample, matrix-vector products for linear layers.
func batch1(f func() *ir.Graph) func() *ir.Graph {
	return func() *ir.Graph {
		g, err := f().WithBatch(1)
		if err != nil {
			panic(err)
		}
		return g
	}
}

// convMix has a strided, padded convolution, a grouped and dilated one, a
// 1x1 one, leaky ReLU, tanh, sigmoid, padded average pooling, a residual
// add, a scale and odd channel counts.
func convMix() *ir.Graph {
	b := ir.NewBuilder("convmix", 6)
	x := b.Input("x", 3, 13, 11)
	y := b.Labels("y", 7)
	h := b.LeakyReLU(b.Conv2D("conv1", x, 3, 6, 3, ir.Stride(2), ir.Pad(1)), 0.1) // 6x7x6
	h2 := b.Tanh(b.Conv2D("conv2", h, 6, 6, 3, ir.Groups(3), ir.Dilation(2), ir.Pad(2)))
	h = b.Add(h, b.Scale(h2, 0.5))
	h = b.AvgPool(h, 3, ir.Stride(2), ir.Pad(1)) // 6x4x3
	h = b.Sigmoid(b.Conv2D("conv3", h, 6, 5, 1))
	h = b.Flatten(h)
	logits := b.Linear("fc", h, 60, 7)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// bigKernel has a 7x7 convolution, overlapping padded max pooling, a
// rectangular stride, batch-norm 1d, classic dropout, a softmax inside the
// network, and an SVM loss with L1 and elastic-net penalties.
func bigKernel() *ir.Graph {
	b := ir.NewBuilder("bigkernel", 5)
	x := b.Input("x", 2, 17, 16)
	y := b.Labels("y", 5)
	h := b.ReLU(b.Conv2D("conv1", x, 2, 4, 7, ir.Pad(3)))            // 4x17x16
	h = b.MaxPool(h, 3, ir.Stride(2), ir.Pad(1))                     // 4x9x8
	h = b.Conv2D("conv2", h, 4, 5, 3, ir.Stride(2, 1), ir.Pad(0, 1)) // 5x4x8
	h = b.ReLU(b.BatchNorm("bn2", h, 5))
	h = b.Flatten(h)
	h = b.Linear("fc1", h, 160, 12)
	h = b.ReLU(b.BatchNorm("bn3", h, 12))
	h = b.Dropout("drop", h, 0.7, ir.Classic())
	h = b.Softmax(b.Linear("fc2", h, 12, 9))
	logits := b.Linear("fc3", h, 9, 5)
	b.Output("logits", logits)
	loss := b.Add(b.SVMLoss(logits, y), b.L1(1e-3, "fc1.weight"))
	b.Loss(b.Add(loss, b.ElasticNet(1e-3, 0.5, "conv2.weight", "fc3.weight")))
	return b.Graph()
}

// wideFC has a linear layer whose weight (512x256) is as large as
// gemm.GemvPar splits among the workers, which the partial batch of three
// multiplies one sample at a time, and which lies as column panels with
// the AVX2 kernels (gemm.WeightPanels); the inference graph folds the
// batch-norm after it into it.
func wideFC() *ir.Graph {
	b := ir.NewBuilder("widefc", 5)
	x := b.Input("x", 1, 16, 16)
	y := b.Labels("y", 4)
	h := b.Tanh(b.BatchNorm("bn1", b.Linear("fc1", b.Flatten(x), 256, 512), 512))
	logits := b.Linear("fc2", h, 512, 4)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// pixConv has convolutions whose forward products run pixel-major
// (gemm.SgemmIm2colPix, see pixelMajor): 16 output channels a group over
// 6x6 outputs, grouped with a bias and ReLU, and padded and fused with
// batch-norm.
func pixConv() *ir.Graph {
	b := ir.NewBuilder("pixconv", 3)
	x := b.Input("x", 8, 8, 8)
	y := b.Labels("y", 4)
	h := b.ReLU(b.Conv2D("conv1", x, 8, 32, 3, ir.Groups(2)))                                   // 32x6x6
	h = b.ReLU(b.BatchNorm("bn2", b.Conv2D("conv2", h, 32, 16, 3, ir.Pad(1), ir.NoBias()), 16)) // 16x6x6
	logits := b.Linear("fc", b.Flatten(h), 576, 4)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// strided has convolutions whose backward data needs the general scatter
// (stride 2, and padding wider than the kernel) after a first layer.
func strided() *ir.Graph {
	b := ir.NewBuilder("strided", 4)
	x := b.Input("x", 1, 12, 12)
	y := b.Labels("y", 3)
	h := b.ReLU(b.Conv2D("conv1", x, 1, 3, 3))                              // 3x10x10
	h = b.ReLU(b.Conv2D("conv2", h, 3, 5, 3, ir.Stride(2), ir.Pad(1)))      // 5x5x5
	h = b.ReLU(b.Conv2D("conv3", h, 5, 4, 2, ir.Pad(2), ir.Dilation(2)))    // 4x5x5
	h = b.Conv2D("conv4", h, 4, 3, 1, ir.Stride(2), ir.Pad(1), ir.NoBias()) // 3x5x5
	h = b.Dropout("drop", h, 0.6)
	h = b.Flatten(h)
	logits := b.Linear("fc", h, 75, 3, ir.NoBias())
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// graphs returns the training and inference graphs of a model, made by
// the compiler's pipelines (fusion and folding included).
func graphs(t testing.TB, g *ir.Graph) (train, infer *ir.Graph) {
	t.Helper()
	require.NoError(t, g.Validate())
	train, err := passes.Train.Run(g, passes.Options{})
	require.NoError(t, err)
	infer, err = passes.Infer.Run(g, passes.Options{})
	require.NoError(t, err)
	return train, infer
}

// rebatch returns a copy of g for batches of n: every value with the batch
// as axis 0 gets n there.
func rebatch(t testing.TB, g *ir.Graph, n int) *ir.Graph {
	t.Helper()
	b, err := g.Batched()
	require.NoError(t, err)
	c := g.Clone()
	for i, node := range g.Nodes {
		if b[node] {
			c.Nodes[i].Shape[0] = n
		}
	}
	c.Batch = n
	require.NoError(t, c.Validate())
	return c
}

// slice returns the first n samples of a batched feed.
func slice(t *eval.Tensor, n int) *eval.Tensor {
	per := t.Shape.Size() / t.Shape[0]
	s := t.Shape.Clone()
	s[0] = n
	return eval.FromFloat64(s, t.Data[:n*per])
}

// reference is what the generated test file checks against: the feeds and,
// for each batch size, the reference evaluator's results.
type reference struct {
	State   map[string][]float64 `json:"state"`
	X       []float64            `json:"x"`
	Labels  []int32              `json:"labels"`
	Step    uint64               `json:"step"`
	RunSeed uint64               `json:"runSeed"`
	Checks  []refCheck           `json:"checks"`
}

type refCheck struct {
	N       int                  `json:"n"`
	Loss    float64              `json:"loss"`
	Grads   map[string][]float64 `json:"grads"`
	Updates map[string][]float64 `json:"updates"`
	Predict []float64            `json:"predict"`
}

func makeReference(t *testing.T, g *ir.Graph, partial int) *reference {
	train, infer := graphs(t, g)
	feeds := eval.RandomFeeds(train, 42)
	x := feeds[train.Inputs()[0].Attrs.Name]
	lab := feeds[train.LabelsNode().Attrs.Name]
	ref := &reference{State: map[string][]float64{}, X: x.Data, Step: 3, RunSeed: 0xfeed}
	for _, v := range lab.Data {
		ref.Labels = append(ref.Labels, int32(v))
	}
	for _, n := range append(train.Params(), train.Buffers()...) {
		ref.State[n.Attrs.Name] = feeds[n.Attrs.Name].Data
	}
	opts := eval.Options{Step: ref.Step, RunSeed: ref.RunSeed}
	for _, n := range []int{g.Batch, partial} {
		fn := map[string]*eval.Tensor{}
		for k, v := range feeds {
			fn[k] = v
		}
		fn[train.Inputs()[0].Attrs.Name] = slice(x, n)
		fn[train.LabelsNode().Attrs.Name] = slice(lab, n)
		out, err := eval.Outputs(rebatch(t, train, n), fn, opts)
		require.NoError(t, err)
		c := refCheck{N: n, Loss: out["loss:loss"].Data[0], Grads: map[string][]float64{}, Updates: map[string][]float64{}}
		for _, o := range train.Outputs {
			switch o.Kind {
			case ir.OutGrad:
				c.Grads[o.Name] = out[eval.OutputKey(o)].Data
			case ir.OutUpdate:
				c.Updates[o.Name] = out[eval.OutputKey(o)].Data
			}
		}
		pout, err := eval.Outputs(rebatch(t, infer, n), fn, opts)
		require.NoError(t, err)
		c.Predict = pout["value:logits"].Data
		ref.Checks = append(ref.Checks, c)
	}
	return ref
}

// TestGenerated generates every case into a package inside the module,
// writes the reference evaluator's results beside it and runs the
// package's generated check, which trains one step and predicts at a full
// and a partial batch and compares every result.
func TestGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated packages")
	}
	root, err := os.MkdirTemp("testdata", "gen-")
	require.NoError(t, err)
	if *keepGen {
		t.Logf("keeping %s", root)
	} else {
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	var pkgs []string
	for _, tc := range genCases {
		dir := filepath.Join(root, tc.name)
		g := tc.graph()
		train, infer := graphs(t, g)
		files, err := Generate(train, infer, Config{
			Package:    tc.name,
			ImportPath: modulePath + "/" + filepath.ToSlash(dir),
			Source:     "codegen/gocode/gen_test.go:" + tc.name,
		})
		require.NoError(t, err, tc.name)
		for name, src := range files {
			p := filepath.Join(dir, name)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, src, 0o644))
		}
		ref := makeReference(t, g, tc.partial)
		js, err := json.Marshal(ref)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ref.json"), js, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "check_test.go"), []byte(strings.NewReplacer("PKG", tc.name, "NOROWS", fmt.Sprint(tc.noRows)).Replace(checkTest)), 0o644))
		// The unfused inference graph, which staleTest evaluates with the
		// model's current parameters and buffers.
		lowered, err := passes.LowerInference(g)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "infer.txt"), []byte(lowered.String()), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stale_test.go"), []byte(strings.ReplaceAll(staleTest, "PKG", tc.name)), 0o644))
		pkgs = append(pkgs, "./"+filepath.ToSlash(dir))
	}
	// One go command builds and runs every package, in parallel.
	args := append([]string{"test", "-count=1", "-v", "-run=."}, pkgs...)
	args = append(args, "./"+filepath.ToSlash(filepath.Join(root, "lenet5", "cmd", "train")))
	cmd := exec.Command("go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("go %s:\n%s", strings.Join(args, " "), out.String())
	require.NoError(t, err, "generated checks failed")

	if *genBench {
		cmd := exec.Command("go", "test", "-run=^$", "-bench=.", "-benchmem", "./"+filepath.ToSlash(filepath.Join(root, "lenet5")))
		out, err := cmd.CombinedOutput()
		t.Logf("benchmarks of the generated lenet5:\n%s", out)
		require.NoError(t, err)
	}
}

// checkTest is the test file written into each generated package.
const checkTest = `package PKG

import (
	"encoding/json"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/cnnc/cnnc/runtime"
)

type refCheck struct {
	N       int                  ` + "`json:\"n\"`" + `
	Loss    float64              ` + "`json:\"loss\"`" + `
	Grads   map[string][]float64 ` + "`json:\"grads\"`" + `
	Updates map[string][]float64 ` + "`json:\"updates\"`" + `
	Predict []float64            ` + "`json:\"predict\"`" + `
}

type reference struct {
	State   map[string][]float64 ` + "`json:\"state\"`" + `
	X       []float64            ` + "`json:\"x\"`" + `
	Labels  []int32              ` + "`json:\"labels\"`" + `
	Step    uint64               ` + "`json:\"step\"`" + `
	RunSeed uint64               ` + "`json:\"runSeed\"`" + `
	Checks  []refCheck           ` + "`json:\"checks\"`" + `
}

func load(t testing.TB) (*reference, []float32) {
	b, err := os.ReadFile("ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(ref.X))
	for i, v := range ref.X {
		x[i] = float32(v)
	}
	return &ref, x
}

func (m *Model) setState(t testing.TB, ref *reference) {
	for _, p := range m.State() {
		v, ok := ref.State[p.Name]
		if !ok || len(v) != len(p.Data) {
			t.Fatalf("reference lacks %s", p.Name)
		}
		logical := make([]float32, len(v))
		for i := range v {
			logical[i] = float32(v[i])
		}
		p.SetLogical(p.Data, logical)
	}
	m.SetStep(ref.Step)
	m.SetRunSeed(ref.RunSeed)
}

// compare reports elements that differ from the reference by more than
// rtol*(|want| + 1e-2*scale) + 1e-6, where scale is the tensor's largest
// magnitude: a relative test that does not demand relative accuracy of
// values that cancel to nearly zero (such as the gradient of a bias before
// a batch-norm, exactly 0 in theory and float32 noise here). It returns
// the worst relative error.
func compare(t *testing.T, what string, got []float32, want []float64, rtol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return 0
	}
	var scale float64
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	bad, worst := 0, 0.0
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if r := d / (math.Abs(w) + 1e-2*scale + 1e-6/rtol); r > worst {
			worst = r
		}
		if d > rtol*(math.Abs(w)+1e-2*scale)+1e-6 || math.IsNaN(float64(got[i])) {
			if bad < 3 {
				t.Errorf("%s[%d] = %v, want %v", what, i, got[i], w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ (worst relative error %.2g)", what, bad, len(want), worst)
	}
	return worst
}

func TestAgainstReference(t *testing.T) {
	ref, x := load(t)
	m := New()
	for _, c := range ref.Checks {
		m.setState(t, ref)
		loss := m.TrainStep(x[:c.N*SampleSize], ref.Labels[:c.N])
		compare(t, "loss", []float32{loss}, []float64{c.Loss}, 1e-4)
		var worstGrad, worstUpdate float64
		for _, p := range m.Params() {
			worstGrad = math.Max(worstGrad, compare(t, "grad:"+p.Name, p.Logical(p.Grad), c.Grads[p.Name], 1e-4))
		}
		for _, p := range m.Buffers() {
			worstUpdate = math.Max(worstUpdate, compare(t, "update:"+p.Name, p.Logical(p.Data), c.Updates[p.Name], 1e-4))
		}
		m.setState(t, ref)
		worstPredict := compare(t, "predict", m.Predict(x[:c.N*SampleSize]), c.Predict, 1e-4)
		t.Logf("n=%d: loss %v (reference %v); worst relative error: grads %.2g, updates %.2g, predict %.2g",
			c.N, loss, c.Loss, worstGrad, worstUpdate, worstPredict)
	}
}

// TestDeterministic checks that the gradients do not depend on the number
// of threads and that a step allocates nothing.
func TestDeterministic(t *testing.T) {
	ref, x := load(t)
	var grads [][]float32
	for _, threads := range []int{1, 2, 3} {
		m := New()
		m.SetThreads(threads)
		m.setState(t, ref)
		m.TrainStep(x, ref.Labels)
		var g []float32
		for _, p := range m.Params() {
			g = append(g, p.Grad...)
		}
		grads = append(grads, g)
	}
	for i := range grads[0] {
		if grads[0][i] != grads[1][i] || grads[0][i] != grads[2][i] {
			t.Fatalf("gradient element %d differs with the thread count: %v %v %v", i, grads[0][i], grads[1][i], grads[2][i])
		}
	}
	m := New()
	m.setState(t, ref)
	// A few steps first: the GEMMs' drivers, which calls take from a
	// shared list in whatever order the workers come, each grow their
	// buffers the first time they serve a layer of a new shape.
	for range 5 {
		m.TrainStep(x, ref.Labels)
		m.Predict(x[:SampleSize])
	}
	if a := testing.AllocsPerRun(3, func() { m.TrainStep(x, ref.Labels) }); a != 0 {
		t.Errorf("TrainStep allocates %v times", a)
	}
	if a := testing.AllocsPerRun(3, func() { m.Predict(x[:SampleSize]) }); a != 0 {
		t.Errorf("Predict allocates %v times", a)
	}
}

// countedRanges is an SGD's range hook that counts the elements it
// updates per parameter.
type countedRanges struct {
	*runtime.SGD
	mu    sync.Mutex
	elems map[*runtime.Param]int
}

func (c *countedRanges) UpdateRange(p *runtime.Param, lo, hi int) {
	c.mu.Lock()
	c.elems[p] += hi - lo
	c.mu.Unlock()
	c.SGD.UpdateRange(p, lo, hi)
}

// TestGradHook checks that an SGD step fused into TrainStep through the
// gradient hook gives the bits of TrainStep followed by SGD.Step, over
// steps whose momentum matters, without and with a range hook (the
// weights whose gradients go to it by rows), that every parameter is
// updated once a step, some by rows with the range hook, and that a
// hooked step allocates nothing.
func TestGradHook(t *testing.T) {
	ref, x := load(t)
	for _, byRows := range []bool{false, true} {
		plain, fused := New(), New()
		plain.setState(t, ref)
		fused.setState(t, ref)
		optP := runtime.NewSGD(plain.Params(), 0.05, 0.9, true, 1e-3)
		optF := runtime.NewSGD(fused.Params(), 0.05, 0.9, true, 1e-3)
		seen := map[*runtime.Param]int{}
		fused.SetGradHook(func(p *runtime.Param) {
			seen[p]++
			optF.Update(p)
		})
		ranges := &countedRanges{SGD: optF, elems: map[*runtime.Param]int{}}
		if byRows {
			fused.SetRangeHook(ranges)
		}
		for step := range 3 {
			lp := plain.TrainStep(x, ref.Labels)
			optP.Step()
			lf := fused.TrainStep(x, ref.Labels)
			optF.Done()
			if lp != lf {
				t.Fatalf("rows %v, step %d: loss %v with the hook, %v without", byRows, step, lf, lp)
			}
			for i, p := range plain.State() {
				q := fused.State()[i]
				for j := range p.Data {
					if p.Data[j] != q.Data[j] {
						t.Fatalf("rows %v, step %d: %s[%d] = %v with the hook, %v without", byRows, step, p.Name, j, q.Data[j], p.Data[j])
					}
				}
			}
		}
		rowWise := 0
		for _, p := range fused.Params() {
			e := ranges.elems[p]
			if e%len(p.Data) != 0 || seen[p]+e/len(p.Data) != 3 {
				t.Errorf("rows %v: in 3 steps the hook saw %s %d times and the range hook %d of its %d elements", byRows, p.Name, seen[p], e, len(p.Data))
			}
			if e > 0 {
				rowWise++
			}
		}
		if byRows != (rowWise > 0) && !NOROWS {
			t.Errorf("rows %v: %d weights updated by rows", byRows, rowWise)
		}
		fused.SetGradHook(optF.Update)
		if byRows {
			fused.SetRangeHook(optF)
		}
		if a := testing.AllocsPerRun(3, func() { fused.TrainStep(x, ref.Labels) }); a != 0 {
			t.Errorf("rows %v: TrainStep with a hook allocates %v times", byRows, a)
		}
		if !byRows {
			continue
		}
		// Without the hook again, each parameter has its own gradient.
		fused.SetGradHook(nil)
		fused.TrainStep(x, ref.Labels)
		plain.setState(t, ref)
		fused.setState(t, ref)
		plain.TrainStep(x, ref.Labels)
		fused.TrainStep(x, ref.Labels)
		for i, p := range plain.Params() {
			for j, g := range p.Grad {
				if q := fused.Params()[i]; q.Grad[j] != g {
					t.Fatalf("after SetGradHook(nil): grad of %s[%d] = %v, want %v", p.Name, j, q.Grad[j], g)
				}
			}
		}
	}
}

func BenchmarkTrainStep(b *testing.B) {
	ref, x := load(b)
	m := New()
	m.setState(b, ref)
	b.ResetTimer()
	for range b.N {
		m.TrainStep(x, ref.Labels)
	}
	b.ReportMetric(float64(b.N*Batch)/b.Elapsed().Seconds(), "images/s")
}

func BenchmarkPredict1(b *testing.B) {
	ref, x := load(b)
	m := New()
	m.setState(b, ref)
	b.ResetTimer()
	for range b.N {
		m.Predict(x[:SampleSize])
	}
}

func BenchmarkPredictBatch(b *testing.B) {
	ref, x := load(b)
	m := New()
	m.setState(b, ref)
	b.ResetTimer()
	for range b.N {
		m.Predict(x)
	}
	b.ReportMetric(float64(b.N*Batch)/b.Elapsed().Seconds(), "images/s")
}
`

// staleTest is the test file, written into each generated package beside
// infer.txt (the model's inference graph before fusion and folding), that
// checks that Predict never serves stale folded weights (pytorch#108863):
// after a training step has changed the running statistics, an SGD update
// has changed the weights, or Load has replaced both, Predict must agree
// with the reference evaluator on the unfused graph with the model's
// current state.
const staleTest = `package PKG

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
)

// reference returns what the unfused inference graph predicts for x with
// m's current parameters and buffers.
func (m *Model) reference(t *testing.T, g *ir.Graph, x []float32) []float64 {
	t.Helper()
	f64 := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = float64(f)
		}
		return out
	}
	state := map[string][]float32{}
	for _, p := range m.State() {
		state[p.Name] = p.Logical(p.Data)
	}
	feeds := map[string]*eval.Tensor{}
	for _, n := range append(g.Params(), g.Buffers()...) {
		feeds[n.Attrs.Name] = eval.FromFloat64(n.Shape, f64(state[n.Attrs.Name]))
	}
	in := g.Inputs()[0]
	feeds[in.Attrs.Name] = eval.FromFloat64(in.Shape, f64(x))
	out, err := eval.Outputs(g, feeds, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out["value:logits"].Data
}

func TestFoldedWeightsNotStale(t *testing.T) {
	ref, x := load(t)
	src, err := os.ReadFile("infer.txt")
	if err != nil {
		t.Fatal(err)
	}
	g, err := ir.Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	m.setState(t, ref)
	before := slices.Clone(m.Predict(x)) // folds the initial weights
	compare(t, "predict before training", before, m.reference(t, g, x), 1e-4)

	// A training step moves the running statistics; an SGD step moves
	// the weights.
	m.TrainStep(x, ref.Labels)
	for _, p := range m.Params() {
		for i := range p.Data {
			p.Data[i] -= 0.5 * p.Grad[i]
		}
	}
	after := slices.Clone(m.Predict(x))
	if slices.Equal(before, after) {
		t.Fatal("Predict gives the same logits after the weights changed")
	}
	compare(t, "predict after a training step", after, m.reference(t, g, x), 1e-4)

	// Load replaces every parameter and buffer.
	other := NewSeeded(7)
	other.TrainStep(x, ref.Labels)
	path := filepath.Join(t.TempDir(), "other.safetensors")
	if err := other.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(path); err != nil {
		t.Fatal(err)
	}
	loaded := slices.Clone(m.Predict(x))
	compare(t, "predict after Load", loaded, m.reference(t, g, x), 1e-4)
	compare(t, "predict after Load, by the model saved", loaded, toFloat64(other.Predict(x)), 1e-6)
}

func toFloat64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}
`

var _ = fmt.Sprint
