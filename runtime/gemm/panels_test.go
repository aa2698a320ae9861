package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cnnc/cnnc/runtime"
	"github.com/cnnc/cnnc/runtime/elem"
)

// shrinkPanels stores every weight the AVX2 kernels can take as column
// panels until t ends, small ones too, so that tests reach the edges.
func shrinkPanels(t testing.TB) {
	saved := panelFloats
	t.Cleanup(func() { panelFloats = saved })
	panelFloats = 1
}

// TestLinearProducts checks a linear layer's four products against
// float64 sums, with its weight as WeightPanels lays it out in each kernel
// mode: the forward with a bias and tanh (also handed on to a second
// layer), the matrix-vector products of a few samples, the backward-data
// and the weight gradient, whose update must see every element once.
func TestLinearProducts(t *testing.T) {
	shrinkPanels(t)
	shapes := []struct{ m, outs, ins int }{
		{1, 6, 16}, {7, 13, 20}, {4, 6, 33}, {64, 500, 500}, {64, 500, 784}, {150, 22, 40}, {3, 50, 33}, {64, 10, 500},
	}
	kernelModes(t, func(t *testing.T) {
		for _, pool := range testPools(t, 0, 1, 2) {
			for _, sh := range shapes {
				name := fmt.Sprintf("%dx%dx%d/workers=%d", sh.m, sh.outs, sh.ins, poolWorkers(pool))
				t.Run(name, func(t *testing.T) { checkLinear(t, pool, sh.m, sh.outs, sh.ins) })
			}
		}
	})
}

func checkLinear(t *testing.T, pool *runtime.Pool, m, outs, ins int) {
	rng := rand.New(rand.NewPCG(uint64(m), uint64(outs*ins)))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rng.Float32() - 0.5
		}
		return s
	}
	x, w, w2, bias, dy := fill(m*ins), fill(outs*ins), fill(outs*outs), fill(outs), fill(m*outs)
	panels := WeightPanels(outs, ins)
	stored := func(w []float32, rows, cols int) []float32 {
		if !WeightPanels(rows, cols) {
			return w
		}
		p := make([]float32, len(w))
		runtime.ToPanels(p, w, rows, cols)
		return p
	}
	ws, w2s := stored(w, outs, ins), stored(w2, outs, outs)
	if asmSupported() && useAsm && !avx512() && !panels {
		t.Fatalf("WeightPanels(%d, %d) is false with the AVX2 kernels", outs, ins)
	}
	dot := func(n int, a func(int) float32, b func(int) float32) float64 {
		var s float64
		for i := range n {
			s += float64(a(i)) * float64(b(i))
		}
		return s
	}
	check := func(what string, got []float32, want func(i, j int) float64, rows, cols, ld int) {
		t.Helper()
		for i := range rows {
			for j := range cols {
				if d := math.Abs(float64(got[i*ld+j]) - want(i, j)); d > 1e-4*(1+math.Abs(want(i, j))) {
					t.Fatalf("%s[%d][%d] = %v, want %v (weight as panels: %v)", what, i, j, got[i*ld+j], want(i, j), panels)
				}
			}
		}
	}
	fwd := func(x []float32, w []float32, k int) func(i, o int) float64 {
		return func(i, o int) float64 {
			return math.Tanh(dot(k, func(p int) float32 { return x[i*k+p] }, func(p int) float32 { return w[o*k+p] }) + float64(bias[o]))
		}
	}

	// The forward, handing its output on to a second layer outs x outs.
	var h [2]Handoff
	y, y2 := make([]float32, m*outs), make([]float32, m*outs)
	LinearForward(pool, m, outs, ins, x, ins, ws, y, outs, Epilogue{ColBias: bias, Tanh: true}, nil, &h[0])
	check("forward", y, fwd(x, w, ins), m, outs, outs)
	LinearForward(pool, m, outs, outs, y, outs, w2s, y2, outs, Epilogue{ColBias: bias, Tanh: true}, &h[0], &h[1])
	check("forward after a handoff", y2, fwd(y, w2, outs), m, outs, outs)

	// A few samples, one matrix-vector product each.
	if n := min(m, 3); n > 0 {
		yv := make([]float32, n*outs)
		LinearGemv(pool, n, outs, ins, ws, x, ins, yv, outs)
		check("gemv", yv, func(i, o int) float64 {
			return dot(ins, func(p int) float32 { return x[i*ins+p] }, func(p int) float32 { return w[o*ins+p] })
		}, n, outs, outs)
	}

	dx := make([]float32, m*ins)
	LinearBackwardData(pool, m, outs, ins, dy, outs, ws, dx, ins)
	check("backward-data", dx, func(i, p int) float64 {
		return dot(outs, func(o int) float32 { return dy[i*outs+o] }, func(o int) float32 { return w[o*ins+p] })
	}, m, ins, ins)

	dw := fill(outs * ins) // overwritten
	seen := make([]int, outs*ins)
	unit := 1 // the update takes elements of a weight as panels, rows of a row-major one
	if !panels {
		unit = ins
	}
	u := &runtime.RowUpdate{Done: func(lo, hi int) {
		for i := lo * unit; i < hi*unit; i++ {
			seen[i]++
		}
	}}
	LinearBackwardWeight(pool, m, outs, ins, dy, outs, x, ins, dw, u)
	if panels {
		logical := make([]float32, len(dw))
		runtime.FromPanels(logical, dw, outs, ins)
		dw = logical
	}
	check("weight gradient", dw, func(o, p int) float64 {
		return dot(m, func(i int) float32 { return dy[i*outs+o] }, func(i int) float32 { return x[i*ins+p] })
	}, outs, ins, ins)
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("the update saw element %d %d times, want once (weight as panels: %v)", i, n, panels)
		}
	}
}

// BenchmarkLinearLayers times the MLP's ten linear layers (784-500, then
// nine 500-500, batch 64) through a training step's products: the
// forwards with tanh, each handing its output on; then from the last
// layer back, the backward-data with tanh's backward, and the weight
// gradient with SGD's update with momentum, by rows or panels. It runs
// the weights row-major and as column panels in alternation, and
// reports the median time of a step of each (with the AVX2 kernels:
// CNNC_AVX512=0 on a CPU with AVX-512), and each phase's.
func BenchmarkLinearLayers(b *testing.B) {
	if !useAsm || avx512() {
		b.Skip("the weights lie as column panels with the AVX2 kernels only (CNNC_AVX512=0 on a CPU with AVX-512)")
	}
	const batch, hid, in, layers, steps = 64, 500, 784, 10, 50
	pool := runtime.NewPool(2)
	b.Cleanup(pool.Close)
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int, s float32) []float32 {
		v := aligned(nil, n)
		for i := range v {
			v[i] = (rng.Float32() - 0.5) * s
		}
		return v
	}
	ins := func(l int) int {
		if l == 0 {
			return in
		}
		return hid
	}
	type layer struct{ w, v, wp, vp, bias, y, dz []float32 }
	x := fill(batch*in, 1)
	var ls []layer
	for l := range layers {
		k := ins(l)
		lr := layer{w: fill(hid*k, 0.05), v: aligned(nil, hid*k), vp: aligned(nil, hid*k), bias: fill(hid, 0.1), y: aligned(nil, batch*hid), dz: fill(batch*hid, 0.01)}
		lr.wp = aligned(nil, hid*k)
		runtime.ToPanels(lr.wp, lr.w, hid, k)
		ls = append(ls, lr)
	}
	grad := aligned(nil, hid*in)
	var h [2]Handoff
	var phase [2][3]time.Duration
	step := func(panels bool) {
		saved := panelFloats
		if !panels {
			panelFloats = math.MaxInt
		}
		defer func() { panelFloats = saved }()
		i := 0
		if panels {
			i = 1
		}
		t0 := time.Now()
		for l := range ls {
			xin, from := x, (*Handoff)(nil)
			if l > 0 {
				xin, from = ls[l-1].y, &h[(l-1)%2]
			}
			w := ls[l].w
			if panels {
				w = ls[l].wp
			}
			LinearForward(pool, batch, hid, ins(l), xin, ins(l), w, ls[l].y, hid, Epilogue{ColBias: ls[l].bias, Tanh: true}, from, &h[l%2])
		}
		t1 := time.Now()
		phase[i][0] += t1.Sub(t0)
		for l := layers - 1; l >= 0; l-- {
			k := ins(l)
			w, v := ls[l].w, ls[l].v
			if panels {
				w, v = ls[l].wp, ls[l].vp
			}
			t1 := time.Now()
			if l > 0 {
				dx := ls[l-1].dz
				LinearBackwardData(pool, batch, hid, k, ls[l].dz, hid, w, dx, k)
				y := ls[l-1].y
				pool.For(batch, func(lo, hi int) { elem.TanhBackward(dx[lo*k:hi*k], y[lo*k:hi*k], dx[lo*k:hi*k]) })
			}
			t2 := time.Now()
			phase[i][1] += t2.Sub(t1)
			g := grad[:hid*k]
			unit := k
			if panels {
				unit = 1
			}
			u := &runtime.RowUpdate{Done: func(r0, r1 int) {
				lo, hi := r0*unit, r1*unit
				elem.SGD(w[lo:hi], g[lo:hi], v[lo:hi], 1e-9, 0.9, 0, false, false)
			}, Reads: [][]float32{w, v}}
			xin := x
			if l > 0 {
				xin = ls[l-1].y
			}
			LinearBackwardWeight(pool, batch, hid, k, ls[l].dz, hid, xin, k, g, u)
			phase[i][2] += time.Since(t2)
		}
	}
	step(false)
	step(true)
	phase = [2][3]time.Duration{}
	var times [2][]float64
	for b.Loop() {
		for i, panels := range []bool{false, true} {
			t0 := time.Now()
			for range steps {
				step(panels)
			}
			times[i] = append(times[i], float64(time.Since(t0).Microseconds())/steps)
		}
	}
	for i, name := range []string{"rows", "panels"} {
		n := float64(len(times[i]) * steps)
		b.ReportMetric(median(times[i]), "us/step-"+name)
		for j, p := range []string{"fwd", "data", "weight"} {
			b.ReportMetric(float64(phase[i][j].Microseconds())/n, "us/"+p+"-"+name)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
