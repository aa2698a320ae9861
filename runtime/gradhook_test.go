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

// rangeLog is a RangeHook that records its calls.
type rangeLog struct {
	calls [][3]any
	reads [][]float32
}

func (r *rangeLog) UpdateRange(p *Param, lo, hi int) {
	r.calls = append(r.calls, [3]any{p.Name, lo, hi})
}
func (r *rangeLog) Reads(*Param) [][]float32 { return r.reads }

func TestGradHookRows(t *testing.T) {
	w, b := NewParam("w", []int{3, 4}, true), NewParam("b", []int{3}, true)
	params := []*Param{w, b}
	var seen []string
	var h GradHook
	r := &rangeLog{reads: [][]float32{w.Data}}
	h.SetRanges(r)
	assert.Nil(t, h.Rows(w, 4), "no hook: no rows")
	h.Set(params, func(p *Param) { seen = append(seen, p.Name) }, []int{0, -1}, 12)
	h.SetRanges(nil)
	assert.Nil(t, h.Rows(w, 4), "no range hook: no rows")

	h.SetRanges(r)
	u := h.Rows(w, 4)
	require.NotNil(t, u)
	assert.Equal(t, r.reads, u.Reads)
	u.Done(1, 3)
	u.Done(0, 1)
	assert.Equal(t, [][3]any{{"w", 4, 12}, {"w", 0, 4}}, r.calls, "rows of 4 elements")
	h.Done(w) // went by rows
	h.Done(b)
	assert.Equal(t, []string{"b"}, seen)
	h.Done(w) // a step that did not take w's rows
	assert.Equal(t, []string{"b", "w"}, seen)
	assert.Same(t, u, h.Rows(w, 4), "one update per parameter, made once")
	h.Done(w)
	assert.Equal(t, []string{"b", "w"}, seen)

	h.Set(params, nil, nil, 0)
	h.Set(params, func(p *Param) { seen = append(seen, p.Name) }, []int{0, -1}, 12)
	assert.Nil(t, h.Rows(w, 4), "Set with a nil hook drops the range hook")
}
