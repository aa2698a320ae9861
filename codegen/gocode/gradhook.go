package gocode

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cnnc/cnnc/ir"
)

// The gradient hook lets an optimiser's step run inside TrainStep: the
// generated TrainStep calls the hook for each trainable parameter as soon
// as the backward pass has written the parameter's gradient for the last
// time and reads the parameter no more, so that the hook may update it in
// place while the gradient is still in cache. The gradients then need not
// all exist at once: with a hook they share one buffer, laid out here by
// lifetime as the memory planner lays out values, so that a network's
// working set (parameters, momentum and gradients) loses the gradients of
// all layers but a few.

// A gradUse is where one parameter's gradient lives in TrainStep's calls:
// from the call that first writes it to the last call that touches the
// parameter or its gradient.
type gradUse struct {
	field       string // the parameter's Model field
	size        int    // floats
	first, last int    // indices into the calls; last is the hook's place
	written     bool   // some call writes the gradient
	off         int    // offset in the shared gradient buffer
}

// gradPlan tracks the uses of the parameters' gradients in the training
// graph's calls.
type gradPlan struct {
	uses  []*gradUse // in stateList order
	field map[string]*gradUse
	size  int // floats of the shared buffer
}

func newGradPlan(states []*stateVar) *gradPlan {
	gp := &gradPlan{field: map[string]*gradUse{}}
	for _, s := range states {
		if !s.trainable {
			continue
		}
		u := &gradUse{field: s.field, size: s.shape.Size(), first: -1, last: -1}
		gp.uses = append(gp.uses, u)
		gp.field[s.field] = u
	}
	return gp
}

// note records that calls [start, end) read the expressions reads and write
// writes.
func (gp *gradPlan) note(start, end int, reads, writes []string) {
	touch := func(e string, write bool) {
		// A parameter's expressions are m.<field>.Data and m.<field>.Grad.
		rest, ok := strings.CutPrefix(e, "m.")
		field, part, _ := strings.Cut(rest, ".")
		u := gp.field[field]
		if !ok || u == nil || (part != "Data" && part != "Grad") {
			return
		}
		u.last = max(u.last, end)
		if write && part == "Grad" {
			u.written = true
			if u.first < 0 {
				u.first = start
			}
		}
	}
	for _, e := range reads {
		touch(e, false)
	}
	for _, e := range writes {
		touch(e, true)
	}
}

// layout places the gradients that calls write in the shared buffer,
// first fit in order of their first write, so that two share memory only
// when their lifetimes do not overlap. A gradient that no call writes
// keeps its own buffer.
func (gp *gradPlan) layout() {
	var placed []*gradUse
	order := append([]*gradUse(nil), gp.uses...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].first < order[j].first })
	for _, u := range order {
		if !u.written {
			continue
		}
		// The lowest offset clear of every placed gradient alive at once.
		var busy [][2]int
		for _, q := range placed {
			if q.first < u.last && u.first < q.last {
				busy = append(busy, [2]int{q.off, q.off + q.size})
			}
		}
		sort.Slice(busy, func(i, j int) bool { return busy[i][0] < busy[j][0] })
		off := 0
		for _, b := range busy {
			if off+u.size <= b[0] {
				break
			}
			off = max(off, b[1])
		}
		u.off = off
		gp.size = max(gp.size, off+u.size)
		placed = append(placed, u)
	}
}

// rowsArg returns the row update argument (see Kernel.RowCols) of a
// kernel that writes the value expr, whose rows are cols floats: the
// model's GradHook.Rows where expr is a parameter's gradient, which
// withHooks keeps where the gradient may go by rows, and nil otherwise.
func rowsArg(expr string, cols int) string {
	field, ok := strings.CutSuffix(strings.TrimPrefix(expr, "m."), ".Grad")
	if !ok || !strings.HasPrefix(expr, "m.") {
		return "nil"
	}
	return fmt.Sprintf("m.grads.Rows(m.%s, %d)", field, cols)
}

// withHooks returns the calls with a hook call after the last use of each
// parameter; a parameter no call touches is handed over at the end. A call
// that would hand a parameter's gradient over by rows (rowsArg) keeps that
// only where it writes the whole gradient and is the parameter's last use,
// so that its hook comes right after it; it passes nil otherwise.
func (gp *gradPlan) withHooks(calls []string) []string {
	calls = append([]string(nil), calls...)
	for i, c := range calls {
		for _, u := range gp.uses {
			arg := fmt.Sprintf("m.grads.Rows(m.%s, ", u.field)
			j := strings.Index(c, arg)
			if j < 0 {
				continue
			}
			end := j + strings.Index(c[j:], ")") + 1
			if u.first != i || u.last != i+1 {
				calls[i] = c[:j] + "nil" + c[end:]
			}
		}
	}
	at := map[int][]string{}
	for _, u := range gp.uses {
		last := u.last
		if last < 0 {
			last = len(calls)
		}
		at[last] = append(at[last], fmt.Sprintf("m.grads.Done(m.%s)", u.field))
	}
	out := append([]string(nil), at[0]...)
	for i, c := range calls {
		out = append(out, c)
		out = append(out, at[i+1]...)
	}
	return out
}

// nodeExprs returns the expressions of the values node n's kernel reads
// (its arguments) and writes (its value and results).
func nodeExprs(p *graphPlan, n *ir.Node) (reads, writes []string) {
	for _, a := range n.Args {
		reads = append(reads, p.expr[a])
	}
	for _, r := range p.g.Results(n) {
		if r != nil {
			writes = append(writes, p.expr[r])
		}
	}
	return reads, writes
}

// hookSource returns the Model's field and the declarations for the
// gradient hook.
func (gp *gradPlan) hookSource() (fields, decls string) {
	var own int
	offs := make([]string, len(gp.uses))
	for i, u := range gp.uses {
		offs[i] = "-1"
		if u.written {
			own += u.size
			offs[i] = fmt.Sprint(u.off)
		}
	}
	fields = "grads runtime.GradHook // see SetGradHook\n"
	decls = fmt.Sprintf(`// gradOffsets places each parameter's gradient, in the order of Params,
// in the buffer the gradients share while a gradient hook is set (-1: its
// own): %d floats instead of %d, laid out so that gradients alive at the
// same time in TrainStep do not overlap.
var gradOffsets = [...]int{%s}

// SetGradHook makes TrainStep call h(p) for each trainable parameter p
// as soon as the backward pass has p's gradient and reads p no more, so
// that h may update p in place: an optimiser's step fused into the
// backward pass (SGD.Update of package runtime, then SGD.Done after
// TrainStep), which reads each gradient while it is still in cache. While
// a hook is set the gradients share memory (see gradOffsets), so p.Grad
// holds p's gradient only during h(p). SetGradHook(nil) gives the
// parameters their own gradients back.
func (m *Model) SetGradHook(h func(p *runtime.Param)) {
m.grads.Set(m.params, h, gradOffsets[:], %d)
}

// SetRangeHook makes TrainStep hand the gradients of the weights whose
// products can to r by rows, while a gradient hook is set: each worker
// updates the rows of the weight it has just computed the gradient of,
// while they are in cache (see GradHook.Rows of package runtime). r must
// do for a range of elements what the gradient hook does for a parameter,
// as SGD.UpdateRange of package runtime does for SGD.Update.
// SetRangeHook(nil) hands every gradient to the hook whole.
func (m *Model) SetRangeHook(r runtime.RangeHook) {
m.grads.SetRanges(r)
}

`, max(gp.size, 1), own, strings.Join(offs, ", "), max(gp.size, 1))
	return fields, decls
}
