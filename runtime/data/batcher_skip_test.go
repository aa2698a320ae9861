package data

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/runtime"
)

// TestBatcherSkipEpoch checks that skipping finished epochs brings a new
// Batcher to where one that served them stands, as a resumed run needs.
func TestBatcherSkipEpoch(t *testing.T) {
	ds := tiny(50, 3)
	x, y := make([]float32, 14), make([]int32, 7)
	served := NewBatcher(ds, 7, runtime.NewRNG(9))
	for range 2 {
		epoch(t, served, x, y)
	}
	want, _ := epoch(t, served, x, y)

	skipped := NewBatcher(ds, 7, runtime.NewRNG(9))
	skipped.SkipEpoch()
	skipped.SkipEpoch()
	require.Equal(t, 2, skipped.Epoch())
	got, _ := epoch(t, skipped, x, y)
	require.Equal(t, want, got, "the third epoch's order")

	// Skipping the rest of an epoch that has begun ends it, too.
	part := NewBatcher(ds, 7, runtime.NewRNG(9))
	part.Next(x, y)
	part.SkipEpoch()
	part.SkipEpoch()
	got, _ = epoch(t, part, x, y)
	require.Equal(t, want, got)
}
