package ir_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/models/linear"
)

func TestJSONRoundTrip(t *testing.T) {
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			g := m.build()
			data, err := json.Marshal(g)
			require.NoError(t, err)
			var back ir.Graph
			require.NoError(t, json.Unmarshal(data, &back))
			assert.Empty(t, ir.DiffGraphs(g, &back))
			assert.Equal(t, g.String(), back.String())
			assert.NoError(t, back.ValidateTraining())
			again, err := json.Marshal(&back)
			require.NoError(t, err)
			assert.Equal(t, string(data), string(again))
		})
	}
}

// TestJSONSchema pins the schema that tools read.
func TestJSONSchema(t *testing.T) {
	b := ir.NewBuilder("tiny", 2)
	x := b.Input("x", 3)
	y := b.Labels("y", 2)
	logits := b.Linear("fc", x, 3, 2, ir.NoBias())
	b.Output("logits", logits)
	b.Loss(b.SVMLoss(logits, y))
	g := b.Graph()
	for _, n := range g.Nodes {
		n.Pos = ir.Pos{File: "m.go", Line: 10 + n.ID}
	}
	data, err := json.Marshal(g)
	require.NoError(t, err)
	want := `{"name":"tiny","batch":2,"nodes":[` +
		`{"id":0,"op":"input","args":[],"shape":[2,3],"dtype":"f32","attrs":{"name":"x"},"layer":"x","pos":{"file":"m.go","line":10}},` +
		`{"id":1,"op":"labels","args":[],"shape":[2],"dtype":"i32","attrs":{"name":"y","classes":2},"layer":"y","pos":{"file":"m.go","line":11}},` +
		`{"id":2,"op":"param","args":[],"shape":[2,3],"dtype":"f32","attrs":{"name":"fc.weight","init":{"scheme":"torch_default","fan_in":3,"fan_out":2}},"layer":"fc","pos":{"file":"m.go","line":12}},` +
		`{"id":3,"op":"linear","args":[0,2],"shape":[2,2],"dtype":"f32","layer":"fc","pos":{"file":"m.go","line":13}},` +
		`{"id":4,"op":"svmloss","args":[3,1],"shape":[],"dtype":"f32","attrs":{"margin":1},"pos":{"file":"m.go","line":14}}],` +
		`"outputs":[{"kind":"value","name":"logits","node":3},{"kind":"loss","name":"loss","node":4}],"errors":[]}`
	assert.Equal(t, want, string(data))
}

func TestJSONCarriesBuilderErrors(t *testing.T) {
	b := ir.NewBuilder("bad", 4)
	x := b.Input("x", 1, 28, 28)
	h := b.Conv2D("conv1", x, 3, 8, 3)
	b.Linear("fc", h, 10, 2)
	b.L2(1e-4, "nope")
	g := b.Graph()
	want := g.Validate()
	require.Error(t, want)

	data, err := json.Marshal(g)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"errors":[{"pos":{"file":`)
	var back ir.Graph
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Empty(t, ir.DiffGraphs(g, &back))
	assert.EqualError(t, back.Validate(), want.Error())
}

func TestJSONNonFinite(t *testing.T) {
	data := `{"name":"m","batch":1,"nodes":[{"id":0,"op":"const","args":[],"shape":[1],"attrs":{"value":"-Inf"}}],"outputs":[],"errors":[]}`
	var g ir.Graph
	require.NoError(t, json.Unmarshal([]byte(data), &g))
	assert.Equal(t, "v0 = const [1] value=-Inf", strings.Split(g.String(), "\n")[1])
	out, err := json.Marshal(&g)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"attrs":{"value":"-Inf"}`)
}

func TestJSONErrors(t *testing.T) {
	node := func(s string) string {
		return `{"name":"m","batch":1,"nodes":[{"id":0,"op":"input","args":[],"shape":[1,2],"attrs":{"name":"x"}},` + s + `],"outputs":[]}`
	}
	tests := []struct {
		name, data, want string
	}{
		{"not json", `{"name":`, "unexpected end of JSON input"},
		{"wrong type", `{"name":1}`, "graph json: json: cannot unmarshal number into Go struct field jsonGraph.name of type string"},
		{"unknown field", `{"name":"m","colour":"red"}`, `graph json: json: unknown field "colour"`},
		{"unknown op", node(`{"id":1,"op":"conv3d","args":[0],"shape":[1]}`), `graph json: nodes[1] (v1): unknown op "conv3d"`},
		{"unknown arg", node(`{"id":1,"op":"relu","args":[7],"shape":[1,2]}`), `graph json: nodes[1] (v1): unknown argument v7`},
		{"arg after use", node(`{"id":1,"op":"relu","args":[2],"shape":[1,2]},{"id":2,"op":"relu","args":[0],"shape":[1,2]}`), `graph json: nodes[1] (v1): argument v2 is used before its definition`},
		{"id twice", node(`{"id":0,"op":"relu","args":[0],"shape":[1,2]}`), `graph json: nodes[1]: id 0 is used twice`},
		{"bad dtype", node(`{"id":1,"op":"relu","args":[0],"shape":[1,2],"dtype":"f16"}`), `graph json: nodes[1] (v1): unknown dtype "f16"; want "f32" or "i32"`},
		{"attribute of another op", node(`{"id":1,"op":"relu","args":[0],"shape":[1,2],"attrs":{"stride":[1,1]}}`), `graph json: nodes[1] (v1): attribute stride does not apply to relu`},
		{"unknown attribute", node(`{"id":1,"op":"relu","args":[0],"shape":[1,2],"attrs":{"colour":1}}`), `graph json: nodes[1] (v1): unknown attribute "colour"`},
		{"bad pair", node(`{"id":1,"op":"maxpool","args":[0],"shape":[1,2],"attrs":{"kernel":[2]}}`), `graph json: nodes[1] (v1): attribute kernel: want a pair [h, w], got 1 numbers`},
		{"bad float", node(`{"id":1,"op":"scale","args":[0],"shape":[1,2],"attrs":{"alpha":"lots"}}`), `graph json: nodes[1] (v1): attribute alpha: want a number, "NaN", "+Inf" or "-Inf", got "lots"`},
		{"bad init", node(`{"id":1,"op":"param","args":[],"shape":[2],"attrs":{"init":{"scheme":"normal","std":1}}}`), `graph json: nodes[1] (v1): attribute init: json: unknown field "std"`},
		{"bad output kind", `{"name":"m","batch":1,"nodes":[],"outputs":[{"kind":"result","name":"y","node":0}]}`, `graph json: outputs[0]: unknown kind "result"; want value, loss, grad or update`},
		{"bad output node", `{"name":"m","batch":1,"nodes":[],"outputs":[{"kind":"value","name":"y","node":3}]}`, `graph json: outputs[0]: unknown node v3`},
		{"bad error op", `{"name":"m","batch":1,"nodes":[],"outputs":[],"errors":[{"op":"conv3d","msg":"x"}]}`, `graph json: errors[0]: unknown op "conv3d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := linear.Softmax()
			before := g.String()
			err := json.Unmarshal([]byte(tt.data), g)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.Equal(t, before, g.String(), "a failed decode leaves the graph alone")
		})
	}
}

func TestJSONMarshalForeignNode(t *testing.T) {
	other := ir.NewGraph("other", 1)
	x := other.Add(ir.OpInput, ir.Shape{1, 2}, ir.Attrs{Name: "x"})
	g := ir.NewGraph("m", 1)
	g.Add(ir.OpReLU, ir.Shape{1, 2}, ir.Attrs{}, x)
	_, err := json.Marshal(g)
	assert.EqualError(t, err, "json: error calling MarshalJSON for type *ir.Graph: graph json: v0 (relu): argument 0 is not in the graph")
}
