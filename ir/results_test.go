package ir_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
)

// fusedGraph returns the text of a graph with a conv2d_bn_relu node, its
// backward and their results, with the lines in between given by middle.
func fusedGraph(results string) string {
	return `graph fused batch=2
v0 = input [2,1,4,4] name=x
v1 = param [3,1,3,3] name=w init=zeros
v2 = param [3] name=gamma init=ones
v3 = param [3] name=beta init=zeros
v4 = buffer [3] name=rm init=zeros
v5 = buffer [3] name=rv init=ones
v6 = conv2d_bn_relu v0 v1 v2 v3 v4 v5 [2,3,2,2] stride=1,1 pad=0,0 dilation=1,1 groups=1 eps=1e-05 momentum=0.1
` + results + `value y = v6
`
}

// TestResults checks the rules of ops with several results: their shapes,
// which of them are batched, and what Validate says of a result node that
// names a bad index, an op with one result, or stands apart from its op.
func TestResults(t *testing.T) {
	tests := []struct {
		name    string
		results string
		want    string // part of Validate's error; "" if valid
	}{
		{"all results", `v7 = result v6 [2,3,2,2] index=1
v8 = result v6 [2,3] index=2
v9 = result v6 [3] index=3
v10 = result v6 [3] index=4
`, ""},
		{"some results", "v7 = result v6 [3] index=4\n", ""},
		{"index 0", "v7 = result v6 [2,3,2,2] index=0\n", "index 0 is outside [1, 5)"},
		{"index past the end", "v7 = result v6 [3] index=5\n", "index 5 is outside [1, 5)"},
		{"wrong shape", "v7 = result v6 [3] index=1\n", "has shape [3], want [2,3,2,2]"},
		{"op with one result", "v7 = relu v6 [2,3,2,2]\nv8 = result v7 [2,3,2,2] index=1\n", "takes a result of relu, which has one"},
		{"apart from its op", "v7 = relu v6 [2,3,2,2]\nv8 = result v6 [3] index=3\n", "must come right after v6"},
		{"out of order", "v7 = result v6 [3] index=3\nv8 = result v6 [2,3] index=2\n", "must come right after v6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ir.Parse(fusedGraph(tt.results))
			if err == nil {
				err = g.Validate()
			}
			if tt.want != "" {
				require.ErrorContains(t, err, tt.want)
				return
			}
			require.NoError(t, err)
			// The text form round-trips, and Results finds every result.
			again, err := ir.Parse(g.String())
			require.NoError(t, err)
			require.Equal(t, g.String(), again.String())
			fused := g.Nodes[6]
			rs := g.Results(fused)
			require.Len(t, rs, 5)
			require.Same(t, fused, rs[0])
			for _, n := range g.Nodes[7:] {
				require.Same(t, n, rs[n.Attrs.Index])
				require.Equal(t, ir.ResultShapes(fused)[n.Attrs.Index], n.Shape)
			}
			batched, err := g.Batched()
			require.NoError(t, err)
			for _, n := range g.Nodes[6:] {
				require.Equal(t, n.Shape[0] == 2 && len(n.Shape) == 4, batched[n], "%v", n)
			}
		})
	}
}

// TestRenumberKeepsResultsWithTheirOp checks that Renumber puts results
// right after their op whatever order it finds them in.
func TestRenumberKeepsResultsWithTheirOp(t *testing.T) {
	g, err := ir.Parse(fusedGraph("v7 = result v6 [2,3] index=2\nv8 = result v6 [3] index=3\n"))
	require.NoError(t, err)
	r2, r3 := g.Nodes[7], g.Nodes[8]
	g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutValue, Name: "mean", Node: r3}, ir.Output{Kind: ir.OutValue, Name: "stats", Node: r2})
	// Move the results to the front, before their op.
	g.Nodes = append([]*ir.Node{r3, r2}, append(g.Nodes[:7:7], g.Nodes[9:]...)...)
	g.Renumber()
	require.NoError(t, g.Validate())
	require.Equal(t, []ir.Op{ir.OpConv2DBNReLU, ir.OpResult, ir.OpResult}, []ir.Op{g.Nodes[6].Op, g.Nodes[7].Op, g.Nodes[8].Op})
	require.Equal(t, 2, g.Nodes[7].Attrs.Index)
}
