package ir_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
)

// Lines that a case expects an error on end in a marker comment "// @NAME";
// the expected messages say {NAME} where Validate prints FILE:LINE.

// mnist starts a builder for 1x28x28 images and 10 classes.
func mnist() (*ir.Builder, *ir.Node, *ir.Node) {
	b := ir.NewBuilder("m", 8)
	return b, b.Input("x", 1, 28, 28), b.Labels("y", 10)
}

var badModels = []struct {
	name     string
	build    func() *ir.Graph
	want     string
	training bool // check with ValidateTraining rather than Validate
}{
	{
		name: "conv channel mismatch",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			h := b.MaxPool(b.ReLU(b.Conv2D("conv1", x, 1, 6, 5)), 2)
			b.Conv2D("conv2", h, 16, 16, 5) // @conv2
			return b.Graph()
		},
		want: `{conv2}: conv2d "conv2": input has 6 channels, the layer expects 16`,
	},
	{
		name: "linear feature mismatch",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Linear("fc1", b.Flatten(x), 256, 120) // @linearIn
			return b.Graph()
		},
		want: `{linearIn}: linear "fc1": input has 784 features, the layer expects 256`,
	},
	{
		name: "kernel larger than input",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			x := b.Input("x", 1, 4, 4)
			b.Conv2D("conv1", x, 1, 4, 5) // @bigKernel
			return b.Graph()
		},
		want: `{bigKernel}: conv2d "conv1": output would be 0x0 for a 4x4 input: the input is too small for this kernel, stride and padding`,
	},
	{
		name: "pool too big",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			x := b.Input("x", 3, 6, 6)
			b.MaxPool(x, 8) // @pool
			return b.Graph()
		},
		want: `{pool}: maxpool: output would be 0x0 for a 6x6 input: the input is too small for this kernel, stride and padding`,
	},
	{
		name: "forgot flatten",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			h := b.MaxPool(b.Conv2D("conv1", x, 1, 16, 5), 2)
			b.Linear("fc1", h, 16*12*12, 120) // @noFlatten
			return b.Graph()
		},
		want: `{noFlatten}: linear "fc1": input has shape [8,16,12,12], want [batch, features]; flatten it first with Flatten`,
	},
	{
		name: "conv on flat input",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			x := b.Input("x", 784)
			b.Conv2D("conv1", x, 1, 6, 5) // @flatConv
			return b.Graph()
		},
		want: `{flatConv}: conv2d "conv1": input has shape [8,784] (rank 2), want rank 4`,
	},
	{
		name: "duplicate layer name",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			h := b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2)) // @first
			b.Conv2D("conv1", h, 6, 16, 5)                // @second
			return b.Graph()
		},
		want: `{second}: conv2d "conv1": layer name is used twice (first at {first})`,
	},
	{
		name: "bad layer name",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Conv2D("conv 1", x, 1, 6, 5) // @badName
			return b.Graph()
		},
		want: `{badName}: conv2d "conv 1": layer name "conv 1" must be an identifier such as "conv1" (letters, digits and _)`,
	},
	{
		name: "unknown parameter in L2",
		build: func() *ir.Graph {
			b, x, y := mnist()
			logits := b.Linear("fc", b.Flatten(x), 784, 10)
			b.Loss(b.Add(b.SoftmaxCrossEntropy(logits, y), b.L2(1e-4, "fc.weights"))) // @l2
			return b.Graph()
		},
		want: `{l2}: l2: unknown parameter "fc.weights"; the model has "fc.bias", "fc.weight"`,
	},
	{
		name: "unknown init scheme",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Linear("fc", b.Flatten(x), 784, 10, ir.WeightInit("gaussian", 0.01)) // @badInit
			return b.Graph()
		},
		want: `{badInit}: linear "fc": unknown initialiser "gaussian" for fc.weight; use one of zeros, ones, const, normal, uniform, xavier_normal, xavier_uniform, kaiming_normal, kaiming_uniform, torch_default`,
	},
	{
		name: "bad init mode",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Conv2D("conv1", x, 1, 6, 5, ir.WeightInit("kaiming_normal", 0, "fan_avg")) // @badMode
			return b.Graph()
		},
		want: `{badMode}: conv2d "conv1": initialiser mode "fan_avg" for conv1.weight must be "fan_in" or "fan_out"`,
	},
	{
		name: "batch 0",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 0) // @batch0
			x := b.Input("x", 4)
			y := b.Labels("y", 2)
			b.Loss(b.SoftmaxCrossEntropy(b.Linear("fc", x, 4, 2), y))
			return b.Graph()
		},
		want: `{batch0}: batch size is 0, want at least 1`,
	},
	{
		name: "bad model name",
		build: func() *ir.Graph {
			b := ir.NewBuilder("LeNet-5", 8) // @badModel
			return b.Graph()
		},
		want: `{badModel}: model name "LeNet-5" must be a lowercase Go identifier such as "lenet5"`,
	},
	{
		name: "input with two dimensions",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			b.Input("x", 28, 28) // @x
			return b.Graph()
		},
		want: `{x}: input "x": has 2 dimensions [28,28], want 3 (channels, height, width) or 1 (features)`,
	},
	{
		name: "loss not scalar",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			logits := b.Linear("fc", b.Flatten(x), 784, 10)
			b.Loss(logits) // @lossShape
			return b.Graph()
		},
		want: `{lossShape}: the loss must be a scalar, got shape [8,10]; use a loss op such as SoftmaxCrossEntropy`,
	},
	{
		name: "loss declared twice",
		build: func() *ir.Graph {
			b, x, y := mnist()
			logits := b.Linear("fc", b.Flatten(x), 784, 10)
			b.Loss(b.SoftmaxCrossEntropy(logits, y))
			b.Loss(b.L2(1e-4, "fc.weight")) // @lossTwice
			return b.Graph()
		},
		want: `{lossTwice}: the loss is declared twice; add the terms together with Add and declare the sum once`,
	},
	{
		name: "no loss",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Output("logits", b.Linear("fc", b.Flatten(x), 784, 10))
			return b.Graph()
		},
		want:     `model "m" has no loss to train; declare one with b.Loss(b.SoftmaxCrossEntropy(logits, labels))`,
		training: true,
	},
	{
		name: "loss without parameters",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			x := b.Input("x", 10)
			y := b.Labels("y", 10)
			b.Loss(b.SoftmaxCrossEntropy(x, y)) // @noParams
			return b.Graph()
		},
		want:     `{noParams}: the loss does not depend on any parameter, so training cannot change it`,
		training: true,
	},
	{
		name: "labels and scores disagree",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			x := b.Input("x", 10)
			y := b.Labels("y", 5)
			b.SVMLoss(b.Linear("fc", x, 10, 10), y) // @svm
			return b.Graph()
		},
		want: `{svm}: svmloss: scores have 10 classes but the labels have 5`,
	},
	{
		name: "bad groups",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			x := b.Input("x", 3, 32, 32)
			b.Conv2D("conv1", x, 3, 8, 3, ir.Groups(2)) // @groups
			return b.Graph()
		},
		want: `{groups}: conv2d "conv1": 3 input and 8 output channels do not split into 2 groups`,
	},
	{
		name: "negative leaky slope",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.LeakyReLU(x, -0.1) // @leaky
			return b.Graph()
		},
		want: `{leaky}: leakyrelu: negative slope is -0.1, want at least 0 (such as 0.01)`,
	},
	{
		name: "dropout keep out of range",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Dropout("drop1", x, 1.5) // @keep
			return b.Graph()
		},
		want: `{keep}: dropout "drop1": keep probability 1.5 is outside (0, 1]`,
	},
	{
		name: "batch-norm channel mismatch",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			h := b.Conv2D("conv1", x, 1, 6, 5, ir.NoBias())
			b.BatchNorm("bn1", h, 16) // @bnChannels
			return b.Graph()
		},
		want: `{bnChannels}: batchnorm "bn1": input has 6 channels, the layer expects 16`,
	},
	{
		name: "option not applicable",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			b.Linear("fc1", b.Flatten(x), 784, 10, ir.Stride(2)) // @stride
			return b.Graph()
		},
		want: `{stride}: linear "fc1": option Stride does not apply to this layer, which takes NoBias, WeightInit or BiasInit`,
	},
	{
		name: "add shapes differ",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			h := b.Flatten(x)
			b.Add(b.Linear("fc1", h, 784, 10), b.Linear("fc2", h, 784, 5)) // @add
			return b.Graph()
		},
		want: `{add}: add: operands: shapes [8,10] and [8,5] differ`,
	},
	{
		name: "nil argument",
		build: func() *ir.Graph {
			b, x, _ := mnist()
			var h *ir.Node
			b.ReLU(h)                   // @relu
			b.BatchNorm("bn1", h, 6)    // @bn
			b.Loss(b.Flatten(h))        // @flatten
			b.Output("y", b.Flatten(x)) // fine
			b.Output("z", h)            // @output
			return b.Graph()
		},
		want: `{relu}: relu: an argument is nil
{bn}: batchnorm "bn1": an argument is nil
{flatten}: flatten: the input is nil or comes from another graph
{output}: output "z" is nil or comes from another graph`,
	},
	{
		name: "node from another graph",
		build: func() *ir.Graph {
			_, other, _ := mnist()
			b := ir.NewBuilder("m", 8)
			b.Conv2D("conv1", other, 1, 6, 5) // @foreign
			return b.Graph()
		},
		want: `{foreign}: conv2d "conv1": an argument comes from another graph`,
	},
	{
		name: "several errors sorted by line",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			head := func(h *ir.Node) *ir.Node {
				return b.Linear("fc2", h, 64, 10) // @early
			}
			x := b.Input("x", 100)
			b.Linear("fc1", x, 10, 64) // @late
			head(b.Linear("fc3", x, 100, 32))
			b.Dropout("drop", x, 0) // @last
			return b.Graph()
		},
		want: `{early}: linear "fc2": input has 32 features, the layer expects 64
{late}: linear "fc1": input has 100 features, the layer expects 10
{last}: dropout "drop": keep probability 0 is outside (0, 1]`,
	},
	{
		name: "more than ten errors",
		build: func() *ir.Graph {
			b := ir.NewBuilder("m", 8)
			for i := range 12 {
				b.Labels(fmt.Sprintf("y%d", i), 1) // @labels
			}
			return b.Graph()
		},
		want: func() string {
			var lines []string
			for i := range 10 {
				lines = append(lines, fmt.Sprintf(`{labels}: labels "y%d": number of classes is 1, want at least 2`, i))
			}
			return strings.Join(append(lines, "(and 2 more errors)"), "\n")
		}(),
	},
}

func TestBuilderErrors(t *testing.T) {
	at := markers(t)
	for _, tt := range badModels {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.build()
			want := at(tt.want)
			if tt.training {
				require.NoError(t, g.Validate())
				assert.EqualError(t, g.ValidateTraining(), want)
			} else {
				assert.EqualError(t, g.Validate(), want)
			}

			// The errors survive the trip through JSON that cnnc compile
			// makes, and a broken graph still prints and parses.
			data, err := json.Marshal(g)
			require.NoError(t, err)
			var back ir.Graph
			require.NoError(t, json.Unmarshal(data, &back))
			assert.Equal(t, errText(g.Validate()), errText(back.Validate()))
			assert.Equal(t, errText(g.ValidateTraining()), errText(back.ValidateTraining()))
			p, err := ir.Parse(g.String())
			require.NoError(t, err)
			assert.Equal(t, g.String(), p.String())
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// markers reads this file's "// @NAME" comments and returns a function
// that replaces each {NAME} in a message by this file's name and the
// marked line, as the builder records positions.
func markers(t *testing.T) func(string) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := map[string]int{}
	mark := regexp.MustCompile(`// @(\w+)$`)
	for i, line := range strings.Split(string(src), "\n") {
		if m := mark.FindStringSubmatch(line); m != nil {
			_, dup := lines[m[1]]
			require.False(t, dup, "marker // @%s is used twice", m[1])
			lines[m[1]] = i + 1
		}
	}
	return func(msg string) string {
		return regexp.MustCompile(`\{(\w+)\}`).ReplaceAllStringFunc(msg, func(s string) string {
			name := s[1 : len(s)-1]
			line, ok := lines[name]
			require.True(t, ok, "no // @%s marker", name)
			return fmt.Sprintf("%s:%d", file, line)
		})
	}
}

// TestValidateStructure checks the errors for graphs that no builder
// makes: a cycle, arguments out of order, an argument from elsewhere.
func TestValidateStructure(t *testing.T) {
	// build returns x (v0), a = relu(x) (v1) and c = tanh(a) (v2).
	build := func() (*ir.Graph, *ir.Node, *ir.Node, *ir.Node) {
		g := ir.NewGraph("m", 2)
		x := g.Add(ir.OpInput, ir.Shape{2, 3}, ir.Attrs{Name: "x"})
		a := g.Add(ir.OpReLU, ir.Shape{2, 3}, ir.Attrs{}, x)
		c := g.Add(ir.OpTanh, ir.Shape{2, 3}, ir.Attrs{}, a)
		g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutValue, Name: "y", Node: c})
		require.NoError(t, g.Validate())
		return g, x, a, c
	}
	tests := []struct {
		name   string
		rewire func(g *ir.Graph, x, a, c *ir.Node)
		want   string
	}{
		{"cycle", func(g *ir.Graph, x, a, c *ir.Node) { a.Args[0] = c },
			"relu: v1 uses v2, which does not come before it (the graph has a cycle or is out of order)"},
		{"self loop", func(g *ir.Graph, x, a, c *ir.Node) { a.Args[0] = a },
			"relu: v1 uses v1, which does not come before it (the graph has a cycle or is out of order)"},
		{"out of order", func(g *ir.Graph, x, a, c *ir.Node) {
			g.Nodes[1], g.Nodes[2] = c, a
			c.ID, a.ID = 1, 2
		}, "tanh: v1 uses v2, which does not come before it (the graph has a cycle or is out of order)"},
		{"stale IDs", func(g *ir.Graph, x, a, c *ir.Node) { c.ID = 7 },
			"tanh: has ID 7 at index 2 (a bug in cnnc: call Renumber)"},
		{"argument from another graph", func(g *ir.Graph, x, a, c *ir.Node) {
			a.Args[0] = ir.NewGraph("other", 2).Add(ir.OpInput, ir.Shape{2, 3}, ir.Attrs{Name: "x"})
		}, "relu: argument 0 of v1 is not in the graph"},
		{"nil argument", func(g *ir.Graph, x, a, c *ir.Node) { c.Args[0] = nil },
			"tanh: argument 0 of v2 is not in the graph"},
		{"output not in graph", func(g *ir.Graph, x, a, c *ir.Node) { g.Outputs[0].Node = nil },
			`value output "y" is not a node of the graph`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, x, a, c := build()
			tt.rewire(g, x, a, c)
			assert.EqualError(t, g.Validate(), tt.want)
			_ = g.String() // a broken graph still prints
		})
	}
}
