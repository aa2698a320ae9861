package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expected values are hand-computed from the closed forms in PyTorch's
// lr_scheduler.py (MultiStepLR, ExponentialLR, CosineAnnealingWarmRestarts,
// the last with epoch passed to step, which is its documented per-batch use).
func TestScheduleValues(t *testing.T) {
	sgdr := Cosine{Base: 0.1, T0: 10, TMult: 2, Min: 0.001}
	cos := Cosine{Base: 1, T0: 5, TMult: 1}
	tests := []struct {
		s    StepSchedule
		t    float64
		want float64
	}{
		{Constant{Base: 0.3}, 7.5, 0.3},
		// MultiStepLR(milestones=[4, 8], gamma=0.1): constant within an epoch.
		{StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{4, 8}}, 3.99, 0.1},
		{StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{4, 8}}, 4, 0.01},
		{StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{4, 8}}, 7.5, 0.01},
		{StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{4, 8}}, 8, 0.001},
		// ExponentialLR(gamma=0.9): 0.1 * 0.9^t.
		{ExponentialDecay{Base: 0.1, Gamma: 0.9}, 0, 0.1},
		{ExponentialDecay{Base: 0.1, Gamma: 0.9}, 1, 0.09},
		{ExponentialDecay{Base: 0.1, Gamma: 0.9}, 3, 0.0729},
		{ExponentialDecay{Base: 0.1, Gamma: 0.9}, 10, 0.03486784401},
		{ExponentialDecay{Base: 0.1, Gamma: 0.9}, 2.5, 0.07684334714209162},
		// 0.1 / (1 + 0.5 t).
		{InverseTime{Base: 0.1, K: 0.5}, 0, 0.1},
		{InverseTime{Base: 0.1, K: 0.5}, 1, 0.1 / 1.5},
		{InverseTime{Base: 0.1, K: 0.5}, 4, 0.1 / 3},
		// CosineAnnealingWarmRestarts(T_0=10, T_mult=2, eta_min=0.001):
		// periods [0, 10), [10, 30), [30, 70).
		{sgdr, 0, 0.1},
		{sgdr, 0.5, 0.001 + 0.099*(1+math.Cos(math.Pi*0.05))/2},
		{sgdr, 1, 0.09757729755661011},
		{sgdr, 5, 0.0505},
		{sgdr, 9, 0.0034227024433899004},
		{sgdr, 10, 0.1},
		{sgdr, 11, 0.09939057285945932},
		{sgdr, 20, 0.0505},
		{sgdr, 29.5, 0.0011525919802101658},
		{sgdr, 30, 0.1},
		{sgdr, 31, 0.09984740801978985},
		{sgdr, 50, 0.0505},
		{sgdr, 69.99, 0.0010000152670435224},
		{sgdr, 70, 0.1},
		// T_mult=1: the same period over and over.
		{cos, 0, 1},
		{cos, 2.5, 0.5},
		{cos, 4, 0.09549150281252633},
		{cos, 5, 1},
		{cos, 7, 0.6545084971874737},
		// Warm-up over 2 epochs from 1% into a constant 0.1.
		{Warmup{Epochs: 2, Start: 0.01, Inner: Constant{Base: 0.1}}, 0, 0.001},
		{Warmup{Epochs: 2, Start: 0.01, Inner: Constant{Base: 0.1}}, 1, 0.1 * 0.505},
		{Warmup{Epochs: 2, Start: 0.01, Inner: Constant{Base: 0.1}}, 2, 0.1},
		{Warmup{Epochs: 2, Inner: Constant{Base: 0.1}}, 0.5, 0.025},
		// Warm-up scales the inner schedule, not shifted.
		{Warmup{Epochs: 2, Inner: cos}, 1, 0.5 * cos.LRAt(1)},
		{Warmup{Epochs: 2, Inner: cos}, 3, cos.LRAt(3)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v@%v", tt.s, tt.t), func(t *testing.T) {
			assert.InDelta(t, tt.want, tt.s.LRAt(tt.t), 1e-12)
			if tt.t == math.Floor(tt.t) {
				assert.Equal(t, tt.s.LRAt(tt.t), tt.s.LR(int(tt.t)), "LR(e) == LRAt(e)")
			}
		})
	}
}

// TestCosineRestartBoundaries checks the exact restarts where a
// floating-point logarithm would put the epoch in the previous period.
func TestCosineRestartBoundaries(t *testing.T) {
	s := Cosine{Base: 1, T0: 1, TMult: 10}
	for _, start := range []float64{1, 11, 111, 1111, 11111} {
		assert.InDelta(t, 1, s.LRAt(start), 1e-12, "restart at %v", start)
		assert.Less(t, s.LRAt(start-1e-6), 1e-6, "end of the period before %v", start)
	}
	s3 := Cosine{Base: 1, T0: 3, TMult: 3}
	for _, start := range []float64{3, 12, 39, 120, 363} {
		assert.InDelta(t, 1, s3.LRAt(start), 1e-12, "restart at %v", start)
	}
}

func TestLRAtStep(t *testing.T) {
	s := ExponentialDecay{Base: 1, Gamma: 0.5}
	assert.InDelta(t, math.Pow(0.5, 2.25), LRAtStep(s, 2, 1, 4), 1e-15)
	assert.Equal(t, s.LR(2), LRAtStep(s, 2, 0, 4))
	assert.Equal(t, s.LR(2), LRAtStep(s, 2, 3, 0), "no steps per epoch: per epoch")
	// A Schedule that is not a StepSchedule is asked per epoch.
	assert.Equal(t, 0.7, LRAtStep(epochOnly{}, 3, 2, 4))
	w := Warmup{Epochs: 1, Inner: epochOnly{}}
	assert.InDelta(t, 0.35, w.LRAt(0.5), 1e-15)
}

type epochOnly struct{}

func (epochOnly) LR(epoch int) float64 { return 0.7 }

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		spec string
		want Schedule
	}{
		{"constant", Constant{Base: 0.1}},
		{" const ", Constant{Base: 0.1}},
		{"step:4,8:0.1", StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{4, 8}}},
		{"step:3", StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{3}}},
		{"step:3,3:0.5", StepDecay{Base: 0.1, Gamma: 0.5, StepEpochs: []int{3, 3}}},
		{"exp:0.9", ExponentialDecay{Base: 0.1, Gamma: 0.9}},
		{"inv:0.5", InverseTime{Base: 0.1, K: 0.5}},
		{"cosine:10:2:0", Cosine{Base: 0.1, T0: 10, TMult: 2}},
		{"cosine:10", Cosine{Base: 0.1, T0: 10, TMult: 1}},
		{"cosine:10:1:0.001", Cosine{Base: 0.1, T0: 10, TMult: 1, Min: 0.001}},
		{"warmup:2", Warmup{Epochs: 2, Start: DefaultWarmupStart, Inner: Constant{Base: 0.1}}},
		{"warmup:2:0+cosine:10:1", Warmup{Epochs: 2, Inner: Cosine{Base: 0.1, T0: 10, TMult: 1}}},
		{"warmup:0.5+step:4,8:0.1", Warmup{Epochs: 0.5, Start: DefaultWarmupStart, Inner: StepDecay{Base: 0.1, Gamma: 0.1, StepEpochs: []int{4, 8}}}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec, 0.1)
			require.NoError(t, err)
			assert.Equal(t, tt.want, s)
			require.Implements(t, (*StepSchedule)(nil), s)
			// String gives back a spec that parses to the same schedule.
			again, err := ParseSchedule(fmt.Sprint(s), 0.1)
			require.NoError(t, err, "String() = %q", fmt.Sprint(s))
			assert.Equal(t, s, again)
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct {
		spec string
		base float64
		err  string
	}{
		{"", 0.1, `schedule "": empty schedule (examples: constant, step:4,8:0.1`},
		{"linear", 0.1, `unknown schedule "linear"; known schedules are constant, step, exp, inv, cosine and warmup`},
		{"constant:1", 0.1, "constant takes no arguments"},
		{"step", 0.1, "step takes EPOCH,EPOCH,...[:GAMMA], such as step:4,8:0.1"},
		{"step:4,x", 0.1, `step epoch "x" is not an epoch number >= 0`},
		{"step:4:-1", 0.1, "step gamma -1 must be >= 0"},
		{"exp:1.5", 0.1, "exp gamma 1.5 must be in (0, 1]"},
		{"exp:abc", 0.1, `exp gamma "abc" is not a number`},
		{"exp:NaN", 0.1, `exp gamma "NaN" is not a number`},
		{"inv:-1", 0.1, "inv k -1 must be >= 0"},
		{"cosine", 0.1, "cosine takes T0[:TMULT[:MIN]], such as cosine:10:2:0"},
		{"cosine:0", 0.1, "cosine T0 0 must be > 0 epochs"},
		{"cosine:10:0.5", 0.1, "cosine TMULT 0.5 must be >= 1"},
		{"cosine:10:1:0.5", 0.1, "cosine MIN 0.5 must be in [0, 0.1], the base learning rate"},
		{"cosine:10:1:0:9", 0.1, "cosine takes T0[:TMULT[:MIN]]"},
		{"warmup", 0.1, "warmup takes EPOCHS[:START], such as warmup:2 or warmup:2:0.1"},
		{"warmup:0+constant", 0.1, "warmup epochs 0 must be > 0"},
		{"warmup:2:2", 0.1, "warmup start 2 must be in [0, 1]"},
		{"warmup:2+warmup:1", 0.1, "warmup must come first"},
		{"warmup:2+", 0.1, "empty schedule"},
		{"cosine:10+warmup:2", 0.1, `only a warmup can come before "+"`},
		{"constant", -1, "learning rate -1 must be a finite number >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseSchedule(tt.spec, tt.base)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}
