package data

import (
	"slices"
	"testing"

	"github.com/cnnc/cnnc/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tiny returns a data set of n images of 1x1x2 whose pixels are i and -i
// and whose label is i % classes.
func tiny(n, classes int) *Dataset {
	d := &Dataset{Name: "tiny", N: n, C: 1, H: 1, W: 2, Classes: classes, Images: make([]float32, 2*n), Labels: make([]int32, n)}
	for i := range n {
		d.Images[2*i], d.Images[2*i+1] = float32(i), float32(-i)
		d.Labels[i] = int32(i % classes)
	}
	return d
}

func TestMeanImageSubtract(t *testing.T) {
	d := tiny(4, 2)
	mean := d.MeanImage()
	assert.Equal(t, []float32{1.5, -1.5}, mean)
	d.Subtract(mean)
	assert.Equal(t, []float32{-1.5, 1.5, -0.5, 0.5, 0.5, -0.5, 1.5, -1.5}, d.Images)
	assert.Equal(t, []float32{0, 0}, d.MeanImage())
	assert.Panics(t, func() { d.Subtract([]float32{1}) })
	assert.Equal(t, []float32{0, 0}, tiny(0, 2).MeanImage())
}

// epoch runs b to the end of an epoch and returns the sample indices (read
// back from the first pixel) and batch sizes it served.
func epoch(t *testing.T, b *Batcher, x []float32, y []int32) (order []int, sizes []int) {
	for {
		n, ok := b.Next(x, y)
		if !ok {
			return order, sizes
		}
		sizes = append(sizes, n)
		for k := range n {
			i := int(x[2*k])
			require.Equal(t, float32(-i), x[2*k+1])
			require.Equal(t, int32(i%3), y[k], "label of sample %d", i)
			order = append(order, i)
		}
	}
}

func TestBatcher(t *testing.T) {
	tests := []struct {
		name     string
		n, batch int
		dropLast bool
		sizes    []int
	}{
		{"exact", 8, 4, false, []int{4, 4}},
		{"partial last", 10, 4, false, []int{4, 4, 2}},
		{"drop last", 10, 4, true, []int{4, 4}},
		{"batch larger than set", 3, 4, false, []int{3}},
		{"batch larger than set, dropped", 3, 4, true, nil},
		{"empty", 0, 4, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := tiny(tt.n, 3)
			b := NewBatcher(ds, tt.batch, runtime.NewRNG(1))
			b.DropLast = tt.dropLast
			assert.Equal(t, len(tt.sizes), b.Batches())
			x, y := make([]float32, 2*tt.batch), make([]int32, tt.batch)
			var orders [][]int
			for e := range 3 {
				order, sizes := epoch(t, b, x, y)
				assert.Equal(t, tt.sizes, sizes, "epoch %d", e)
				assert.Equal(t, e+1, b.Epoch())
				if !tt.dropLast {
					sorted := slices.Clone(order)
					slices.Sort(sorted)
					for i, v := range sorted {
						require.Equal(t, i, v, "epoch %d does not visit each sample once: %v", e, order)
					}
				}
				orders = append(orders, order)
			}
			if tt.n >= 8 {
				assert.NotEqual(t, orders[0], orders[1], "the second epoch was not reshuffled")
			}
		})
	}
}

func TestBatcherReproducible(t *testing.T) {
	ds := tiny(50, 3)
	x, y := make([]float32, 14), make([]int32, 7)
	run := func(seed uint64) []int {
		b := NewBatcher(ds, 7, runtime.NewRNG(seed))
		var all []int
		for range 2 {
			o, _ := epoch(t, b, x, y)
			all = append(all, o...)
		}
		return all
	}
	assert.Equal(t, run(3), run(3))
	assert.NotEqual(t, run(3), run(4))

	in := NewBatcher(ds, 7, nil)
	o, _ := epoch(t, in, x, y)
	for i, v := range o {
		require.Equal(t, i, v, "without an RNG the order is the data set's")
	}
}

func TestBatcherNoAllocs(t *testing.T) {
	ds := tiny(100, 3)
	b := NewBatcher(ds, 16, runtime.NewRNG(1))
	x, y := make([]float32, 32), make([]int32, 16)
	allocs := testing.AllocsPerRun(50, func() {
		for {
			if _, ok := b.Next(x, y); !ok {
				break
			}
		}
	})
	assert.Zero(t, allocs, "a Batcher epoch allocates")
}

func TestBatcherPanics(t *testing.T) {
	ds := tiny(10, 3)
	assert.Panics(t, func() { NewBatcher(ds, 0, nil) })
	b := NewBatcher(ds, 4, nil)
	assert.Panics(t, func() { b.Next(make([]float32, 7), make([]int32, 4)) })
}

func TestEvaluate(t *testing.T) {
	ds := tiny(10, 3)
	// predict gets it right unless the sample index is a multiple of 4:
	// samples 0, 4 and 8 are wrong, so 7 of 10 are right.
	calls := 0
	predict := func(x []float32, n int) []float32 {
		calls++
		assert.Len(t, x, 4*2, "predict gets the whole batch buffer")
		logits := make([]float32, n*3)
		for k := range n {
			i := int(x[2*k])
			c := i % 3
			if i%4 == 0 {
				c = (c + 1) % 3
			}
			logits[3*k+c] = 1
		}
		return logits
	}
	assert.InDelta(t, 0.7, Evaluate(predict, ds, 4), 1e-12)
	assert.Equal(t, 3, calls)
	assert.Equal(t, 0.0, Evaluate(predict, tiny(0, 3), 4))

	// AddScores adds the rows in sample order: twice predict's, and a
	// constant 1.5 for class 2.
	sum := make([]float64, 10*3)
	AddScores(predict, ds, 4, sum)
	AddScores(predict, ds, 4, sum)
	AddScores(func(x []float32, n int) []float32 {
		s := make([]float32, n*3)
		for k := range n {
			s[3*k+2] = 1.5
		}
		return s
	}, ds, 5, sum)
	for i := range 10 {
		want := []float64{0, 0, 1.5}
		c := i % 3
		if i%4 == 0 {
			c = (c + 1) % 3
		}
		want[c] += 2
		assert.Equal(t, want, sum[3*i:3*i+3], "sample %d", i)
	}
	assert.Panics(t, func() { AddScores(predict, ds, 4, sum[:29]) })
}
