package eval_test

import (
	"math"
	"strings"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
)

func TestUniform01(t *testing.T) {
	seed := ir.NameSeed("drop1")
	if seed != 7835718858194987975 {
		t.Fatalf("NameSeed(\"drop1\") = %d, want 7835718858194987975", seed)
	}
	want := []float64{
		0.03422290086746216, 0.7141695618629456, 0.9673604965209961, 0.6361023783683777,
		0.9127205610275269, 0.19844788312911987, 0.8865101933479309, 0.2956616282463074,
	}
	for i, w := range want {
		if got := float64(eval.Uniform01(seed, 0, uint64(i))); got != w {
			t.Errorf("Uniform01(%d, 0, %d) = %v, want %v", seed, i, got, w)
		}
	}
	// The step and the seed change the stream; values stay in [0, 1).
	if eval.Uniform01(seed, 1, 0) == eval.Uniform01(seed, 0, 0) || eval.Uniform01(seed+1, 0, 0) == eval.Uniform01(seed, 0, 0) {
		t.Error("Uniform01 ignores its step or seed")
	}
	sum := 0.0
	const n = 100000
	for i := range uint64(n) {
		u := eval.Uniform01(1, 2, i)
		if u < 0 || u >= 1 {
			t.Fatalf("Uniform01(1, 2, %d) = %v, outside [0, 1)", i, u)
		}
		sum += float64(u)
	}
	if mean := sum / n; math.Abs(mean-0.5) > 0.01 {
		t.Errorf("mean of %d draws is %v, want about 0.5", n, mean)
	}
}

// smallGraph has an input, labels, a param and a buffer.
func smallGraph() *ir.Graph {
	g := ir.NewGraph("small", 2)
	x := input(g, "x", 2, 3)
	y := labels(g, "y", 3)
	w := param(g, "w", 3, 3)
	m := buffer(g, "m", 3)
	s := g.Add(ir.OpLinear, ir.Shape{2, 3}, ir.Attrs{}, x, w)
	l := g.Add(ir.OpSoftmaxCrossEntropy, ir.Shape{}, ir.Attrs{}, s, y)
	u := g.Add(ir.OpRunningMean, ir.Shape{3}, ir.Attrs{Momentum: 0.5}, s, m)
	g.Outputs = []ir.Output{
		{Kind: ir.OutValue, Name: "scores", Node: s},
		{Kind: ir.OutLoss, Name: "loss", Node: l},
		{Kind: ir.OutUpdate, Name: "m", Node: u},
	}
	return g
}

func TestFeedErrors(t *testing.T) {
	good := func() map[string]*eval.Tensor {
		return map[string]*eval.Tensor{
			"x": tensor(ir.Shape{2, 3}, 1, 2, 3, 4, 5, 6),
			"y": tensor(ir.Shape{2}, 0, 2),
			"w": eval.NewTensor(ir.Shape{3, 3}),
			"m": eval.NewTensor(ir.Shape{3}),
		}
	}
	cases := []struct {
		name   string
		change func(f map[string]*eval.Tensor)
		want   []string // substrings of the error
	}{
		{"ok", func(map[string]*eval.Tensor) {}, nil},
		{"missing input", func(f map[string]*eval.Tensor) { delete(f, "x") }, []string{`missing feed "x"`}},
		{"missing param", func(f map[string]*eval.Tensor) { delete(f, "w") }, []string{`missing feed "w"`}},
		{"missing buffer", func(f map[string]*eval.Tensor) { f["m"] = nil }, []string{`missing feed "m"`}},
		{"missing labels", func(f map[string]*eval.Tensor) { delete(f, "y") }, []string{`missing feed "y"`}},
		{"wrong shape", func(f map[string]*eval.Tensor) { f["w"] = eval.NewTensor(ir.Shape{3, 2}) }, []string{`feed "w"`, "[3,2]", "[3,3]"}},
		{"wrong rank", func(f map[string]*eval.Tensor) { f["x"] = eval.NewTensor(ir.Shape{6}) }, []string{`feed "x"`, "[6]", "[2,3]"}},
		{"data too short", func(f map[string]*eval.Tensor) { f["m"].Data = f["m"].Data[:2] }, []string{`feed "m"`, "2 elements"}},
		{"label too large", func(f map[string]*eval.Tensor) { f["y"].Data[1] = 3 }, []string{`feed "y"`, "label 3", "index 1", "[0, 3)"}},
		{"label negative", func(f map[string]*eval.Tensor) { f["y"].Data[0] = -1 }, []string{`feed "y"`, "label -1"}},
		{"label not whole", func(f map[string]*eval.Tensor) { f["y"].Data[0] = 0.5 }, []string{`feed "y"`, "label 0.5"}},
		{"extra feeds are ignored", func(f map[string]*eval.Tensor) { f["z"] = eval.NewTensor(ir.Shape{1}) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := smallGraph()
			mustValidate(t, g)
			feeds := good()
			c.change(feeds)
			_, err := eval.Run(g, feeds, eval.Options{})
			if c.want == nil {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Run succeeded, want an error mentioning %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRunRejectsInvalidGraph(t *testing.T) {
	g := ir.NewGraph("bad", 2)
	x := input(g, "x", 2, 3)
	g.Add(ir.OpReLU, ir.Shape{2, 4}, ir.Attrs{}, x) // wrong shape
	if _, err := eval.Run(g, map[string]*eval.Tensor{"x": eval.NewTensor(ir.Shape{2, 3})}, eval.Options{}); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("Run on an invalid graph: err = %v, want a validation error", err)
	}
}

func TestRunDoesNotAliasFeeds(t *testing.T) {
	g := smallGraph()
	feeds := eval.RandomFeeds(g, 1)
	vals, err := eval.Run(g, feeds, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vals[0].Data[0] = 12345
	if feeds["x"].Data[0] == 12345 {
		t.Error("Run returns the feed itself for a leaf; changing the result changes the feed")
	}
}

// lenetish builds a small network with every kind of leaf and output.
func lenetish() *ir.Graph {
	b := ir.NewBuilder("lenetish", 4)
	x := b.Input("x", 1, 8, 8)
	y := b.Labels("y", 5)
	h := b.Conv2D("conv1", x, 1, 3, 3, ir.Pad(1), ir.NoBias())
	h = b.BatchNorm("bn1", h, 3)
	h = b.ReLU(h)
	h = b.MaxPool(h, 2)
	h = b.Flatten(h)
	h = b.Linear("fc1", h, 48, 10, ir.WeightInit("kaiming_normal", 0))
	h = b.Dropout("drop1", b.Tanh(h), 0.5)
	logits := b.Linear("fc2", h, 10, 5)
	b.Output("logits", logits)
	b.Loss(b.Add(b.SoftmaxCrossEntropy(logits, y), b.L2(1e-3, "fc1.weight")))
	return b.Graph()
}

func TestRandomFeedsAndOutputs(t *testing.T) {
	g := lenetish()
	mustValidate(t, g)
	feeds := eval.RandomFeeds(g, 7)
	for _, n := range g.Nodes {
		if !n.Op.IsLeaf() || n.Op == ir.OpConst {
			continue
		}
		f := feeds[n.Attrs.Name]
		if f == nil || !f.Shape.Equal(n.Shape) || len(f.Data) != n.Shape.Size() {
			t.Fatalf("feed %q = %v, want shape %v", n.Attrs.Name, f, n.Shape)
		}
	}
	if len(feeds) != 11 {
		t.Errorf("got %d feeds, want 11 (x, y, 7 params, 2 buffers)", len(feeds))
	}
	for i, v := range feeds["y"].Data {
		if v != math.Trunc(v) || v < 0 || v >= 5 {
			t.Errorf("label %d is %v, want a class in [0, 5)", i, v)
		}
	}
	for _, v := range feeds["bn1.running_var"].Data {
		if v < 0.5 || v >= 1.5 {
			t.Errorf("running variance %v is outside [0.5, 1.5)", v)
		}
	}
	for _, v := range feeds["fc2.weight"].Data {
		if math.Abs(v) > 1/math.Sqrt(10) {
			t.Errorf("torch_default weight %v is outside ±1/sqrt(10)", v)
		}
	}
	// Same seed, same feeds; another seed, other feeds.
	again, other := eval.RandomFeeds(g, 7), eval.RandomFeeds(g, 8)
	for name, f := range feeds {
		if err := eval.Close(again[name], f, 0, 0); err != nil {
			t.Errorf("feed %q changed between calls with the same seed: %v", name, err)
		}
		if name != "y" && eval.Close(other[name], f, 0, 0) == nil {
			t.Errorf("feed %q is the same for seeds 7 and 8", name)
		}
	}

	out, err := eval.Outputs(g, feeds, eval.Options{Step: 2})
	if err != nil {
		t.Fatal(err)
	}
	for key, shape := range map[string]ir.Shape{
		"value:logits":            {4, 5},
		"loss:loss":               {},
		"update:bn1.running_mean": {3},
		"update:bn1.running_var":  {3},
	} {
		if o := out[key]; o == nil || !o.Shape.Equal(shape) {
			t.Errorf("output %q = %v, want shape %v", key, o, shape)
		}
	}
	if l := out["loss:loss"].Data[0]; !(l > 0) || math.IsInf(l, 0) {
		t.Errorf("loss = %v, want a positive number", l)
	}
}

func TestCompareAndClose(t *testing.T) {
	want := tensor(ir.Shape{2, 2}, 1, -100, 0, 1e-9)
	got := tensor(ir.Shape{2, 2}, 1, -101, 1e-7, 1e-9)
	maxErr, at, err := eval.Compare(got, want, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	if at != 1 || math.Abs(maxErr-0.01) > 1e-15 {
		t.Errorf("Compare = %v at %d, want 0.01 at 1", maxErr, at)
	}
	if err := eval.Close(got, want, 0.02, 1e-6); err != nil {
		t.Errorf("Close within tolerance: %v", err)
	}
	err = eval.Close(got, want, 0.005, 1e-6)
	if err == nil {
		t.Fatal("Close beyond tolerance succeeded")
	}
	for _, s := range []string{"at 1 [0 1]", "got -101", "want -100", "largest difference 1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Close error %q does not mention %q", err, s)
		}
	}
	nan := tensor(ir.Shape{1}, math.NaN())
	if eval.Close(nan, nan, 0, 0) != nil || eval.Close(nan, tensor(ir.Shape{1}, 0), 1, 1) == nil {
		t.Error("Close mishandles NaN")
	}
	if eval.Close(eval.NewTensor(ir.Shape{2}), eval.NewTensor(ir.Shape{1, 2}), 1, 1) == nil {
		t.Error("Close accepts different shapes")
	}
	if _, _, err := eval.Compare(eval.NewTensor(ir.Shape{2}), eval.NewTensor(ir.Shape{3}), 1); err == nil {
		t.Error("Compare accepts different shapes")
	}
}

func TestFromFloat32(t *testing.T) {
	x := eval.FromFloat32(ir.Shape{2}, []float32{1.5, -0.25})
	if !x.Shape.Equal(ir.Shape{2}) || x.Data[0] != 1.5 || x.Data[1] != -0.25 {
		t.Errorf("FromFloat32 = %v", x)
	}
	if f := x.Float32(); f[0] != 1.5 || f[1] != -0.25 {
		t.Errorf("Float32 = %v", f)
	}
}
