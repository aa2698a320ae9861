package runtime

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cnnc/cnnc/runtime/elem"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSGD checks three steps of SGD against torch.optim.SGD (PyTorch 1.13,
// lr 0.1, w = [1, -2, 0.5], the same three gradients). Worked by hand for
// momentum 0.9 without Nesterov or decay:
//
//	v1 = g1 = [0.1, 0.2, -0.3]             w = [0.99, -2.02, 0.53]
//	v2 = 0.9 v1 + g2 = [0.49, -0.32, 0.33]  w = [0.941, -1.988, 0.497]
//	v3 = 0.9 v2 + g3 = [-0.259, 0.512, 1.197]  w = [0.9669, -2.0392, 0.3773]
func TestSGD(t *testing.T) {
	grads := [][]float32{{0.1, 0.2, -0.3}, {0.4, -0.5, 0.6}, {-0.7, 0.8, 0.9}}
	tests := []struct {
		momentum    float64
		nesterov    bool
		weightDecay float64
		want, buf   []float32
	}{
		{0, false, 0, []float32{1.0199999809265137, -2.049999952316284, 0.3800000250339508}, nil},
		{0, false, 0.1, []float32{0.9908980131149292, -1.9907000064849854, 0.3651524782180786}, nil},
		{0.9, false, 0, []float32{0.9668999910354614, -2.0392000675201416, 0.3773000240325928}, []float32{-0.2590000033378601, 0.5120000243186951, 1.1970000267028809}},
		{0.9, true, 0, []float32{0.9902099967002869, -2.085280179977417, 0.2695699632167816}, []float32{-0.2590000033378601, 0.5120000243186951, 1.1970000267028809}},
		{0.9, true, 0.01, []float32{0.9824221730232239, -2.0691843032836914, 0.2654603123664856}, []float32{-0.23316484689712524, 0.4579930901527405, 1.2107033729553223}},
		{0.5, false, 0.1, []float32{0.9510979652404785, -1.9556999206542969, 0.3511524796485901}, []float32{-0.3089800179004669, 0.25699999928474426, 1.210974931716919}},
	}
	for _, tt := range tests {
		p := NewParam("fc.weight", []int{3}, true)
		copy(p.Data, []float32{1, -2, 0.5})
		buffer := NewParam("bn.running_mean", []int{2}, false)
		copy(buffer.Data, []float32{7, 8})
		o := NewSGD([]*Param{p, buffer}, 0.1, tt.momentum, tt.nesterov, tt.weightDecay)
		for _, g := range grads {
			copy(p.Grad, g)
			o.Step()
		}
		assert.InDeltaSlice(t, tt.want, p.Data, 1e-6, "momentum %v nesterov %v decay %v: weights", tt.momentum, tt.nesterov, tt.weightDecay)
		assert.Equal(t, []float32{7, 8}, buffer.Data, "SGD changed a buffer")
		state := o.State()
		if tt.buf == nil {
			assert.Empty(t, state)
			continue
		}
		require.Len(t, state, 1)
		assert.Equal(t, "fc.weight.momentum_buffer", state[0].Name)
		assert.InDeltaSlice(t, tt.buf, state[0].Data, 1e-6, "momentum buffer")
	}
}

func TestSGDParallelMatchesSerial(t *testing.T) {
	// Parameters split over the pool, in chunks that straddle them, must
	// get the same bits as each updated in a single piece; a buffer (no
	// gradient) between them must be left alone.
	sizes := []int{parallelMin*3 + 17, 5, 0, 1000, parallelMin / 3}
	var params []*Param
	r := NewRNG(1)
	for i, n := range sizes {
		p := NewParam(fmt.Sprintf("p%d", i), []int{n}, i != 2)
		for j := range p.Data {
			p.Data[j] = float32(r.NormFloat64())
			if p.Grad != nil {
				p.Grad[j] = float32(r.NormFloat64())
			}
		}
		params = append(params, p)
	}
	buf := NewParam("running_mean", []int{7}, false)
	buf.Data[3] = 2
	params = append(params[:2], append([]*Param{buf}, params[2:]...)...)
	want := make([][]float32, len(params))
	vs := make([][]float32, len(params))
	for i, p := range params {
		want[i] = slices.Clone(p.Data)
		vs[i] = make([]float32, len(p.Data))
	}
	o := NewSGD(params, 0.05, 0.9, true, 1e-4)
	o.pool = NewPool(3)
	defer o.pool.Close()
	for step := range 2 {
		for i, p := range params {
			if p.Grad != nil {
				elem.SGD(want[i], p.Grad, vs[i], 0.05, 0.9, 1e-4, true, step == 0)
			}
		}
		o.Step()
	}
	for i, p := range params {
		assert.Equal(t, want[i], p.Data, "parameter %s", p.Name)
	}
	assert.Equal(t, 2, o.Steps)
}

func TestSGDSetLR(t *testing.T) {
	p := NewParam("w", []int{1}, true)
	p.Grad[0] = 1
	o := NewSGD([]*Param{p}, 0.1, 0, false, 0)
	o.SetLR(0.5)
	o.Step()
	assert.Equal(t, float32(-0.5), p.Data[0])
}

func TestSchedules(t *testing.T) {
	step := StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{2, 4}}
	tests := []struct {
		s     Schedule
		epoch int
		want  float64
	}{
		{Constant{Base: 0.05}, 0, 0.05},
		{Constant{Base: 0.05}, 100, 0.05},
		{step, 0, 0.1},
		{step, 1, 0.1},
		{step, 2, 0.01},
		{step, 3, 0.01},
		{step, 4, 0.001},
		{step, 50, 0.001},
		{StepDecay{Base: 1, Gamma: 0.5}, 10, 1},
		{StepDecay{Base: 1, Gamma: 0.5, StepEpochs: []int{3, 3}}, 3, 0.25},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, tt.s.LR(tt.epoch), 1e-15, "%+v epoch %d", tt.s, tt.epoch)
	}
}

func TestSGDUpdateMatchesStep(t *testing.T) {
	// Update on each parameter, in any order, then Done, is Step: same
	// parameters and momentum buffers, bit for bit, over steps whose
	// gradients change, with momentum, Nesterov and weight decay. So is
	// UpdateRange over ranges that cover each parameter, run at once.
	sizes := []int{parallelMin*2 + 9, 3, 0, 700}
	for _, nesterov := range []bool{false, true} {
		mk := func() []*Param {
			r := NewRNG(7)
			var ps []*Param
			for i, n := range sizes {
				p := NewParam(fmt.Sprintf("p%d", i), []int{n}, i != 2)
				for j := range p.Data {
					p.Data[j] = float32(r.NormFloat64())
				}
				ps = append(ps, p)
			}
			return ps
		}
		a, b, c := mk(), mk(), mk()
		oa := NewSGD(a, 0.05, 0.9, nesterov, 1e-3)
		ob := NewSGD(b, 0.05, 0.9, nesterov, 1e-3)
		oc := NewSGD(c, 0.05, 0.9, nesterov, 1e-3)
		r := NewRNG(3)
		for step := range 3 {
			for i, p := range a {
				for j := range p.Grad {
					g := float32(r.NormFloat64())
					p.Grad[j], b[i].Grad[j] = g, g
					if c[i].Grad != nil {
						c[i].Grad[j] = g
					}
				}
			}
			oa.SetLR(0.05 / float64(step+1))
			ob.SetLR(0.05 / float64(step+1))
			oc.SetLR(0.05 / float64(step+1))
			oa.Step()
			for i := len(b) - 1; i >= 0; i-- {
				ob.Update(b[i])
			}
			ob.Done()
			var wg sync.WaitGroup
			for _, p := range c {
				for k := range 3 {
					wg.Go(func() { oc.UpdateRange(p, k*len(p.Data)/3, (k+1)*len(p.Data)/3) })
				}
			}
			wg.Wait()
			oc.Done()
		}
		for i := range a {
			assert.Equal(t, a[i].Data, b[i].Data, "nesterov %v: parameter %s", nesterov, a[i].Name)
			assert.Equal(t, a[i].Data, c[i].Data, "nesterov %v: parameter %s by ranges", nesterov, a[i].Name)
		}
		for i, v := range oa.State() {
			assert.Equal(t, v.Data, ob.State()[i].Data, "nesterov %v: %s", nesterov, v.Name)
			assert.Equal(t, v.Data, oc.State()[i].Data, "nesterov %v: %s by ranges", nesterov, v.Name)
		}
		assert.Equal(t, oa.Steps, ob.Steps)
		// UpdateRange reads each parameter's data and momentum.
		for i, p := range c {
			if len(p.Data) == 0 {
				continue
			}
			want := [][]float32{p.Data}
			if p.Grad != nil {
				want = append(want, oc.velocity[i].Data)
			}
			if assert.Len(t, oc.Reads(p), len(want)) {
				for k, r := range oc.Reads(p) {
					assert.Same(t, &want[k][:1][0], &r[:1][0], "Reads(%s)[%d]", p.Name, k)
				}
			}
		}
	}
	o := NewSGD([]*Param{NewParam("w", []int{1}, true)}, 0.1, 0, false, 0)
	assert.PanicsWithValue(t, `runtime: SGD.Update of "v", which is not one of the optimiser's parameters`, func() {
		o.Update(NewParam("v", []int{1}, true))
	})
	assert.PanicsWithValue(t, `runtime: SGD.UpdateRange of "v", which is not one of the optimiser's parameters`, func() {
		o.UpdateRange(NewParam("v", []int{1}, true), 0, 1)
	})
	assert.Len(t, o.Reads(o.params[0]), 1, "no momentum: Reads is the data alone")
}
