package ir_test

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/linear"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// models are the zoo's graphs that the text and JSON forms are tested on.
var models = []struct {
	name  string
	build func() *ir.Graph
}{
	{"lenet5", lenet5.LeNet5},
	{"lenet5bn", lenet5.LeNet5BN},
	{"softmax", linear.Softmax},
	{"svm", linear.SVM},
}

// moduleRoot returns the module's root directory, which the golden files'
// positions are relative to.
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	return root
}

// buildTrimmed builds a model with positions relative to the module root.
func buildTrimmed(t testing.TB, build func() *ir.Graph) *ir.Graph {
	g := build()
	g.TrimPaths(moduleRoot(t))
	g.TrimPaths("github.com/cnnc/cnnc") // built with -trimpath
	return g
}

func TestPrintGolden(t *testing.T) {
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			g := buildTrimmed(t, m.build)
			require.NoError(t, g.Validate())
			got := g.String()
			path := filepath.Join("testdata", "print", m.name+".txt")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./ir -update")
			require.Equal(t, string(want), got, "printed %s differs from %s; run go test ./ir -update", m.name, path)

			// The golden file reads back as the same graph and prints
			// byte for byte the same.
			p, err := ir.Parse(string(want))
			require.NoError(t, err)
			assert.Empty(t, ir.DiffGraphs(g, p))
			assert.Equal(t, string(want), p.String())
			assert.NoError(t, p.Validate())
			assert.NoError(t, p.ValidateTraining())
		})
	}
}

func TestPrintWriter(t *testing.T) {
	g := linear.Softmax()
	var b strings.Builder
	require.NoError(t, ir.Print(&b, g))
	assert.Equal(t, g.String(), b.String())
	assert.Error(t, ir.Print(failWriter{}, g))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestTrimPaths(t *testing.T) {
	g := ir.NewGraph("m", 1)
	files := []string{"/home/a/cnnc/models/m.go", "/home/a/cnnc2/m.go", "/home/a/cnnc", "other.go", ""}
	for _, f := range files {
		n := g.Add(ir.OpInput, ir.Shape{1, 1}, ir.Attrs{Name: "x"})
		n.Pos = ir.Pos{File: f, Line: 3}
	}
	g.TrimPaths("/home/a/cnnc/")
	var got []string
	for _, n := range g.Nodes {
		got = append(got, n.Pos.File)
	}
	assert.Equal(t, []string{"models/m.go", "/home/a/cnnc2/m.go", "/home/a/cnnc", "other.go", ""}, got)
}

// oddGraph has one node of every op, with every attribute its op uses set
// to a value that is hard to print: NaN, infinities, -0, large seeds,
// strings that need quoting.
func oddGraph(strs []string) *ir.Graph {
	g := ir.NewGraph(strs[0], 3)
	leaf := g.Add(ir.OpInput, ir.Shape{3, 2}, ir.Attrs{Name: strs[1]})
	floats := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e-5, 0.1, 1.0 / 3, math.MaxFloat64, 5e-324}
	for i, op := range ir.Ops() {
		min, _ := ir.ArgRange(op)
		args := make([]*ir.Node, min)
		for j := range args {
			args[j] = leaf
		}
		f := func(k int) float64 { return floats[(i+k)%len(floats)] }
		s := func(k int) string { return strs[(i+k)%len(strs)] }
		attrs := ir.Attrs{
			Name:     s(0),
			Classes:  i - 3,
			Init:     ir.InitSpec{Scheme: s(1), Value: f(1), FanIn: i, FanOut: -i, Mode: s(2)},
			Value:    f(2),
			Stride:   [2]int{i, -1},
			Pad:      [2]int{0, i},
			Dilation: [2]int{-i, 7},
			Groups:   i * 1000,
			Kernel:   [2]int{i % 3, 5},
			Eps:      f(3),
			Momentum: f(4),
			Alpha:    f(5),
			Keep:     f(6),
			Classic:  i%2 == 0,
			Seed:     math.MaxUint64 - uint64(i),
			Lambda:   f(7),
			Beta:     f(8),
			Margin:   f(9),
		}
		if i%3 == 0 {
			attrs.Init = ir.InitSpec{Scheme: "zeros"}
		}
		n := g.Add(op, ir.Shape{3, i}, attrs, args...)
		if i%4 == 0 {
			n.Shape = ir.Shape{}
		}
		if i%2 == 0 {
			n.DType = ir.Int32
		} else {
			n.DType = ir.Float32
		}
		n.Layer = s(3)
		n.Pos = ir.Pos{File: s(4), Line: i * 7}
		g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutputKind(i % 4), Name: s(5), Node: n})
	}
	return g
}

var oddStrings = []string{"m", "x", "conv1.weight", "with space", `q"uote`, "back\\slash", "tab\there",
	"", "#hash", "a=b,c(d)[e]@f:g", "ünïcödé", "v12", "f32", "graph", "-", "C:\\model.go", "/abs/path/model.go"}

func TestRoundTripEveryOp(t *testing.T) {
	g := oddGraph(append(oddStrings, "bad\xffutf8"))
	text := g.String()
	p, err := ir.Parse(text)
	require.NoError(t, err, text)
	assert.Empty(t, ir.DiffGraphs(g, p), text)
	assert.Equal(t, text, p.String())

	// JSON cannot hold invalid UTF-8; every other string survives.
	g = oddGraph(oddStrings)
	data, err := json.Marshal(g)
	require.NoError(t, err)
	var j ir.Graph
	require.NoError(t, json.Unmarshal(data, &j), string(data))
	assert.Empty(t, ir.DiffGraphs(g, &j))
}

func TestParse(t *testing.T) {
	src := `# a hand-written graph
graph "my net" batch=2   # comment after the header

v0 = input [2,3] name=x @"dir with space/m.go":4
v1 = labels i32 [2] name=y classes=3
v2 = param [3,3] name=fc.weight init=xavier_uniform(value=1.5,fan_in=3,fan_out=3) layer=fc
v3 = linear v0 v2 f32 [2,3] layer=fc @m.go:7
v4 = dropout v3 [2,3] keep=0.5 classic=true seed=18446744073709551615 layer="drop 1"
v5 = softmaxcrossentropy v4 v1 [] @m.go:9
value logits = v3
loss loss = v5
`
	g, err := ir.Parse(src)
	require.NoError(t, err)
	assert.Equal(t, "my net", g.Name)
	assert.Equal(t, 2, g.Batch)
	require.Len(t, g.Nodes, 6)
	assert.Equal(t, ir.Pos{File: "dir with space/m.go", Line: 4}, g.Nodes[0].Pos)
	assert.Equal(t, ir.Int32, g.Nodes[1].DType)
	assert.Equal(t, ir.InitSpec{Scheme: "xavier_uniform", Value: 1.5, FanIn: 3, FanOut: 3}, g.Nodes[2].Attrs.Init)
	assert.Equal(t, []*ir.Node{g.Nodes[0], g.Nodes[2]}, g.Nodes[3].Args)
	assert.Equal(t, ir.Attrs{Keep: 0.5, Classic: true, Seed: math.MaxUint64}, g.Nodes[4].Attrs)
	assert.Equal(t, "drop 1", g.Nodes[4].Layer)
	assert.Equal(t, ir.Shape{}, g.Nodes[5].Shape)
	assert.Same(t, g.Nodes[5], g.Loss())
	assert.Same(t, g.Nodes[3], g.Output(ir.OutValue, "logits"))
	assert.NoError(t, g.ValidateTraining())
}

func TestParseErrors(t *testing.T) {
	const h = "graph m batch=2\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", `no graph: the text must start with a line "graph NAME batch=N"`},
		{"no header", "v0 = input [2] name=x", `line 1: want "graph NAME batch=N" first, got "v0"`},
		{"header without batch", "graph m", `line 1: want batch=N, got end of line`},
		{"bad batch", "graph m batch=x", `line 1: want an integer for batch size, got "x"`},
		{"two headers", h + "graph n batch=1", `line 2: the graph is declared twice`},
		{"unknown op", h + "\n\nv0 = input [2,3] name=x\n\n\nv1 = conv3d v0 [2,3]", `line 7: unknown op "conv3d"`},
		{"unknown value", h + "v0 = relu v99 [2]", `line 2: unknown value v99`},
		{"use before definition", h + "v0 = input [2] name=x\nv1 = relu v2 [2]\nv2 = relu v0 [2]", `line 3: v2 is used before its definition on line 4`},
		{"defined twice", h + "v0 = input [2] name=x\nv0 = input [2] name=y", `line 3: v0 is defined twice (first on line 2)`},
		{"attribute of another op", h + "v0 = input [2] name=x\nv1 = relu v0 [2] stride=1,1", `line 3: attribute stride does not apply to relu`},
		{"unknown attribute", h + "v0 = input [2] name=x colour=red", `line 2: unknown attribute "colour"`},
		{"attribute twice", h + "v0 = input [2] name=x name=y", `line 2: name is given twice`},
		{"bad pair", h + "v0 = input [2,1,4,4] name=x\nv1 = maxpool v0 [2,1,2,2] kernel=2 stride=2,2 pad=0,0", `line 3: want a pair h,w for kernel, got "stride"`},
		{"bad float", h + "v0 = input [2] name=x\nv1 = leakyrelu v0 [2] alpha=fast", `line 3: want a number for alpha, got "fast"`},
		{"bad bool", h + "v0 = input [2] name=x\nv1 = dropout v0 [2] keep=1 classic=yes", `line 3: want true or false for classic, got "yes"`},
		{"negative seed", h + "v0 = input [2] name=x\nv1 = dropout v0 [2] seed=-1", `line 3: want an unsigned integer for seed, got "-1"`},
		{"bad dimension", h + "v0 = input [2,x] name=x", `line 2: want an integer for dimension, got "x"`},
		{"unclosed shape", h + "v0 = input [2,3 name=x", `line 2: want , or ] in shape, got "name"`},
		{"no shape", h + "v0 = input name=x", `line 2: want an argument, element type or shape, got "name"`},
		{"unclosed string", h + `v0 = input [2] name="x`, `line 2: malformed string "x`},
		{"bad init field", h + "v0 = param [2] name=w init=normal(std=1)", `line 2: unknown initialiser field "std"; want value, fan_in, fan_out or mode`},
		{"unclosed init", h + "v0 = param [2] name=w init=normal(value=1", `line 2: want , or ) in initialiser, got end of line`},
		{"junk after position", h + "v0 = input [2] name=x @m.go:3 name=y", `line 2: unexpected "name" at end of line`},
		{"bad line number", h + "v0 = input [2] name=x @m.go:three", `line 2: want an integer for line number, got "three"`},
		{"unknown output", h + "value logits = v3", `line 2: unknown value v3`},
		{"output without value", h + "loss loss =", `line 2: want a value vN, got end of line`},
		{"junk line", h + "v0 input [2]", `line 2: want a node "vN = op ..." or an output "value NAME = vN", got "v0"`},
		{"punctuation", h + "= v0", `line 2: want a node "vN = op ..." or an output "value NAME = vN", got "="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ir.Parse(tt.src)
			require.Error(t, err)
			assert.Nil(t, g)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

// TestParseDoesNotValidate checks that Parse reads a graph that is well
// formed but wrong, and leaves the verdict to Validate.
func TestParseDoesNotValidate(t *testing.T) {
	g, err := ir.Parse("graph m batch=2\nv0 = input [2,3] name=x\nv1 = relu v0 [2,4]\n")
	require.NoError(t, err)
	assert.EqualError(t, g.Validate(), "relu: has shape [2,4], want [2,3]")
}

func FuzzParse(f *testing.F) {
	for _, m := range models {
		f.Add(buildTrimmed(f, m.build).String())
	}
	f.Add(oddGraph(oddStrings).String())
	f.Add("graph m batch=2\nv0 = input [2,3] name=x\nv1 = runningvar v0 v0 [2] momentum=NaN\nv2 = linear v1 v0 [1,0]\n")
	f.Fuzz(func(t *testing.T, src string) {
		g, err := ir.Parse(src)
		if err != nil {
			return
		}
		_ = g.Validate() // must not panic
		_ = g.ValidateTraining()
		text := g.String()
		p, err := ir.Parse(text)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, text)
		}
		if d := ir.DiffGraphs(g, p); d != "" {
			t.Fatalf("reparse differs: %s\n%s", d, text)
		}
		if again := p.String(); again != text {
			t.Fatalf("print is not stable:\n%s\n---\n%s", text, again)
		}

		data, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var j ir.Graph
		if err := json.Unmarshal(data, &j); err != nil {
			t.Fatalf("unmarshal: %v\n%s", err, data)
		}
		if validUTF8(g) {
			if d := ir.DiffGraphs(g, &j); d != "" {
				t.Fatalf("json round trip differs: %s\n%s", d, data)
			}
		}
		// Invalid UTF-8 comes back as U+FFFD, escaped the first time only.
		again, err := json.Marshal(&j)
		if err != nil || validUTF8(g) && string(again) != string(data) {
			t.Fatalf("json is not stable: %v\n%s\n---\n%s", err, data, again)
		}
		var k ir.Graph
		if err := json.Unmarshal(again, &k); err != nil {
			t.Fatalf("unmarshal: %v\n%s", err, again)
		}
		if d := ir.DiffGraphs(&j, &k); d != "" {
			t.Fatalf("json is not stable: %s\n%s\n---\n%s", d, data, again)
		}
	})
}

// validUTF8 reports whether every string in g is valid UTF-8, which JSON
// needs to carry it unchanged.
func validUTF8(g *ir.Graph) bool {
	strs := []string{g.Name}
	for _, n := range g.Nodes {
		strs = append(strs, n.Attrs.Name, n.Attrs.Init.Scheme, n.Attrs.Init.Mode, n.Layer, n.Pos.File)
	}
	for _, o := range g.Outputs {
		strs = append(strs, o.Name)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
