package data

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name       string
		n, classes int
		frac       float64
		perClass   []int // validation samples of each class
	}{
		{"tenth", 100, 4, 0.1, []int{3, 3, 3, 3}}, // 25 a class: round(2.5) = 3
		{"fifth", 100, 4, 0.2, []int{5, 5, 5, 5}},
		{"none", 30, 3, 0, []int{0, 0, 0}},
		{"all", 30, 3, 1, []int{10, 10, 10}},
		{"uneven", 23, 2, 0.5, []int{6, 6}}, // 12 and 11: round(6), round(5.5) = 6
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tiny(tt.n, tt.classes)
			d.ClassNames = []string{"a", "b", "c", "d"}[:tt.classes]
			train, val := d.Split(tt.frac, 42)
			want := 0
			for _, k := range tt.perClass {
				want += k
			}
			require.Equal(t, want, val.N)
			require.Equal(t, tt.n-want, train.N)
			got := make([]int, tt.classes)
			for _, l := range val.Labels {
				got[l]++
			}
			assert.Equal(t, tt.perClass, got, "validation samples per class")
			// Every sample lands in exactly one part, in d's order, with
			// its image.
			var seen []int
			for _, part := range []*Dataset{train, val} {
				assert.Equal(t, []int{1, 1, 2, tt.classes}, []int{part.C, part.H, part.W, part.Classes})
				assert.Equal(t, d.ClassNames, part.ClassNames)
				var idx []int
				for i := range part.N {
					k := int(part.Image(i)[0])
					assert.Equal(t, float32(-k), part.Image(i)[1])
					assert.Equal(t, int32(k%tt.classes), part.Labels[i])
					idx = append(idx, k)
				}
				assert.True(t, slices.IsSorted(idx), "order kept")
				seen = append(seen, idx...)
			}
			slices.Sort(seen)
			assert.Equal(t, tt.n, len(slices.Compact(seen)))
		})
	}
}

func TestSplitDeterministic(t *testing.T) {
	d := tiny(200, 5)
	_, a := d.Split(0.3, 7)
	_, b := d.Split(0.3, 7)
	_, c := d.Split(0.3, 8)
	assert.Equal(t, a.Images, b.Images)
	assert.NotEqual(t, a.Images, c.Images, "another seed, another split")
	assert.Equal(t, "tiny (validation split)", a.Name)
	assert.Equal(t, float32(0), d.Image(0)[0], "d unchanged")
	assert.Panics(t, func() { d.Split(1.5, 0) })
	bad := tiny(3, 2)
	bad.Labels[1] = 2
	assert.Panics(t, func() { bad.Split(0.5, 0) })
}
