package harness

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/gen/softmax"
)

func softmaxVariant() *Variant {
	return &Variant{Batch: softmax.Batch, SampleSize: softmax.SampleSize, Classes: softmax.Classes,
		New: func() Net { return softmax.New() }}
}

// TestMainJSON runs a generated benchmark program's main function on the
// softmax classifier, briefly, and checks the JSON it writes.
func TestMainJSON(t *testing.T) {
	t.Setenv("ANCHOR_QUIET_MAX", "1") // no waiting for a quiet machine in tests
	m := Model{Name: "softmax", Anchor: "softmax_anchor", InputShape: softmax.InputShape(),
		Train: softmaxVariant(), Infer: softmaxVariant(), Latency: softmaxVariant()}
	out := filepath.Join(t.TempDir(), "r.json")
	var log strings.Builder
	err := mainErr([]Model{m}, []string{"-reps", "2", "-min-time", "0.001", "-out", out}, &log)
	require.NoError(t, err, log.String())
	assert.Contains(t, log.String(), "[softmax t=")
	assert.Contains(t, log.String(), "train bs=64:")

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var doc struct {
		Tool    string
		Reps    int
		Threads int
		Models  map[string]struct {
			Anchor     string             `json:"anchor"`
			Params     int                `json:"params"`
			InputShape []int              `json:"input_shape"`
			Train      Result             `json:"train_bs64"`
			Infer      map[string]*Result `json:"infer_bs64"`
			Latency    map[string]*Result `json:"latency_bs1"`
		}
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	assert.Equal(t, "cnncbench", doc.Tool)
	assert.Equal(t, 2, doc.Reps)
	assert.Positive(t, doc.Threads)
	e := doc.Models["softmax"]
	assert.Equal(t, "softmax_anchor", e.Anchor)
	assert.Equal(t, 784*10+10, e.Params)
	assert.Equal(t, []int{1, 28, 28}, e.InputShape)
	for what, r := range map[string]*Result{"train": &e.Train, "infer": e.Infer[VariantName], "latency": e.Latency[VariantName]} {
		require.NotNil(t, r, what)
		assert.Len(t, r.Values, 2, what)
		assert.Len(t, r.ForeignLoad, 2, what)
		assert.Positive(t, r.Median, what)
		assert.LessOrEqual(t, r.Min, r.Median, what)
		assert.LessOrEqual(t, r.Median, r.Max, what)
	}
	require.NotNil(t, e.Train.FinalLoss)
	assert.False(t, math.IsNaN(*e.Train.FinalLoss))
	assert.GreaterOrEqual(t, e.Train.StepsPerRep, 3)
	assert.GreaterOrEqual(t, e.Latency[VariantName].CallsPerRep, 50)
	assert.Equal(t, 1, e.Latency[VariantName].Batch)

	err = mainErr([]Model{m}, []string{"-models", "nope"}, &log)
	assert.ErrorContains(t, err, `this program has no model "nope"`)
}

func TestCalibrate(t *testing.T) {
	calls := 0
	k := calibrate(func(int) { calls++; time.Sleep(10 * time.Millisecond) }, 100*time.Millisecond, 3)
	assert.GreaterOrEqual(t, calls, 3)
	assert.InDelta(t, 10, k, 3, "about 100 ms of 10 ms calls")
	assert.Equal(t, 50, calibrate(func(int) {}, 0, 50))
}

func TestQuietReps(t *testing.T) {
	q := Quiet{Max: 1, Retries: 2}
	i := 0.0
	r := q.reps(4, func() float64 { i++; return i })
	assert.Equal(t, []float64{1, 2, 3, 4}, r.Values)
	assert.Equal(t, 2.5, r.Median)
	assert.Equal(t, 1.0, r.Min)
	assert.Equal(t, 4.0, r.Max)
	// Repetitions of microseconds are too short to measure a load: none
	// is retried or counted as contaminated, whatever else the machine
	// does meanwhile.
	assert.Equal(t, []float64{-1, -1, -1, -1}, r.ForeignLoad)
	assert.Zero(t, r.ContaminatedReps)
}
