package runtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGradHook(t *testing.T) {
	a, b, c := NewParam("a", []int{3}, true), NewParam("b", []int{2, 2}, true), NewParam("c", []int{5}, true)
	params := []*Param{a, b, c}
	ownA, ownC := a.Grad, c.Grad
	var seen []string
	var h GradHook
	h.Done(a) // no hook: nothing happens
	h.Set(params, func(p *Param) { seen = append(seen, p.Name) }, []int{0, 3, -1}, 7)
	h.Done(b)
	h.Done(a)
	assert.Equal(t, []string{"b", "a"}, seen)
	require.Len(t, a.Grad, 3)
	require.Len(t, b.Grad, 4)
	assert.Equal(t, 3, cap(a.Grad), "a's gradient ends where b's starts")
	a.Grad[0], b.Grad[3] = 1, 2
	assert.Equal(t, []float32{1, 0, 0, 0, 0, 0, 2}, h.shared)
	assert.Same(t, &ownC[0], &c.Grad[0], "a negative offset keeps the parameter's own gradient")

	h.Set(params, nil, nil, 0)
	assert.Same(t, &ownA[0], &a.Grad[0])
	h.Done(a)
	assert.Len(t, seen, 2, "no hook after Set(nil)")

	assert.PanicsWithValue(t, "runtime: GradHook.Set: the gradient of c, 5 floats at 4, overruns the 8 shared", func() {
		var h GradHook
		h.Set(params, func(*Param) {}, []int{0, 0, 4}, 8)
	})
}
