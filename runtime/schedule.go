package runtime

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A Schedule gives the learning rate for each epoch, counted from 0.
type Schedule interface {
	LR(epoch int) float64
}

// A StepSchedule gives the learning rate at a fractional epoch t, counted
// from 0: step s of stepsPerEpoch within epoch e is t = e + s/stepsPerEpoch.
// Every schedule in this package is a StepSchedule, and its LR(e) equals
// LRAt(float64(e)), so stepping it once per epoch gives what PyTorch's
// scheduler stepped once per epoch gives. LRAtStep does the arithmetic and
// falls back to LR for schedules that are not StepSchedules.
type StepSchedule interface {
	Schedule
	LRAt(epoch float64) float64
}

// LRAtStep returns the learning rate of s for step step (counted from 0) of
// epoch epoch when an epoch has stepsPerEpoch steps: s.LRAt(epoch +
// step/stepsPerEpoch) if s is a StepSchedule, else s.LR(epoch).
func LRAtStep(s Schedule, epoch, step, stepsPerEpoch int) float64 {
	ss, ok := s.(StepSchedule)
	if !ok || stepsPerEpoch <= 0 {
		return s.LR(epoch)
	}
	return ss.LRAt(float64(epoch) + float64(step)/float64(stepsPerEpoch))
}

// Constant is a schedule that keeps the learning rate at Base.
type Constant struct {
	Base float64
}

// LR returns c.Base.
func (c Constant) LR(epoch int) float64 {
	return c.Base
}

// LRAt returns c.Base.
func (c Constant) LRAt(epoch float64) float64 {
	return c.Base
}

// String returns the schedule in ParseSchedule's syntax, without the base.
func (c Constant) String() string {
	return "constant"
}

// StepDecay multiplies the learning rate by Gamma at each epoch listed in
// StepEpochs, like PyTorch's MultiStepLR stepped once per epoch: epoch e uses
// Base * Gamma^k, where k counts the entries of StepEpochs that are <= e. An
// epoch listed twice counts twice, as in PyTorch. Within an epoch the rate
// does not change: LRAt(t) is LR(floor(t)).
type StepDecay struct {
	Base       float64
	Gamma      float64
	StepEpochs []int
}

// LR returns the learning rate for epoch.
func (s StepDecay) LR(epoch int) float64 {
	k := 0
	for _, m := range s.StepEpochs {
		if m <= epoch {
			k++
		}
	}
	return s.Base * math.Pow(s.Gamma, float64(k))
}

// LRAt returns the learning rate at the fractional epoch t: LR(floor(t)).
func (s StepDecay) LRAt(t float64) float64 {
	return s.LR(int(math.Floor(t)))
}

// String returns the schedule in ParseSchedule's syntax, without the base.
func (s StepDecay) String() string {
	ms := make([]string, len(s.StepEpochs))
	for i, m := range s.StepEpochs {
		ms[i] = strconv.Itoa(m)
	}
	return "step:" + strings.Join(ms, ",") + ":" + fmtFloat(s.Gamma)
}

// ExponentialDecay multiplies the learning rate by Gamma every epoch:
// LRAt(t) = Base * Gamma^t, continuously within an epoch. At whole epochs it
// is PyTorch's ExponentialLR stepped once per epoch.
type ExponentialDecay struct {
	Base  float64
	Gamma float64
}

// LR returns Base * Gamma^epoch.
func (s ExponentialDecay) LR(epoch int) float64 {
	return s.LRAt(float64(epoch))
}

// LRAt returns Base * Gamma^t.
func (s ExponentialDecay) LRAt(t float64) float64 {
	return s.Base * math.Pow(s.Gamma, t)
}

// String returns the schedule in ParseSchedule's syntax, without the base.
func (s ExponentialDecay) String() string {
	return "exp:" + fmtFloat(s.Gamma)
}

// InverseTime decays the learning rate as 1/t: LRAt(t) = Base / (1 + K*t),
// Keras's InverseTimeDecay with decay_steps of one epoch and the "1/t
// annealing" of the optimisation lectures.
type InverseTime struct {
	Base float64
	K    float64
}

// LR returns Base / (1 + K*epoch).
func (s InverseTime) LR(epoch int) float64 {
	return s.LRAt(float64(epoch))
}

// LRAt returns Base / (1 + K*t).
func (s InverseTime) LRAt(t float64) float64 {
	return s.Base / (1 + s.K*t)
}

// String returns the schedule in ParseSchedule's syntax, without the base.
func (s InverseTime) String() string {
	return "inv:" + fmtFloat(s.K)
}

// Cosine is cosine annealing with warm restarts (SGDR, Loshchilov and
// Hutter), PyTorch's CosineAnnealingWarmRestarts: the first period lasts T0
// epochs, each next one TMult times longer, and within a period of length
// Ti, Tcur epochs after its start,
//
//	LRAt(t) = Min + (Base - Min) * (1 + cos(pi * Tcur / Ti)) / 2
//
// so the rate falls from Base to Min and jumps back to Base at each restart.
// With TMult = 1, Tcur = t mod T0; with TMult > 1, the period index is
// n = floor(log_TMult(t/T0*(TMult-1) + 1)), Tcur = t - T0*(TMult^n - 1)/(TMult - 1)
// and Ti = T0*TMult^n. PyTorch computes n with a floating-point logarithm,
// which can land one period early exactly at a restart (log(1000, 10) is
// 2.9999999999999996 in Python); this type finds n by comparing period
// boundaries, which are exact. A Cosine with T0 equal to the number of
// epochs is plain cosine annealing (CosineAnnealingLR).
type Cosine struct {
	Base  float64
	T0    float64 // length of the first period in epochs, > 0
	TMult float64 // growth of each period, >= 1 (PyTorch: an integer)
	Min   float64 // learning rate at the end of each period
}

// LR returns the learning rate at the start of epoch.
func (s Cosine) LR(epoch int) float64 {
	return s.LRAt(float64(epoch))
}

// LRAt returns the learning rate at the fractional epoch t.
func (s Cosine) LRAt(t float64) float64 {
	tcur, ti := s.period(max(t, 0))
	return s.Min + (s.Base-s.Min)*(1+math.Cos(math.Pi*tcur/ti))/2
}

// period returns the time since the start of the period that holds t and
// that period's length.
func (s Cosine) period(t float64) (tcur, ti float64) {
	if s.T0 <= 0 {
		return 0, 1
	}
	if s.TMult <= 1 {
		return math.Mod(t, s.T0), s.T0
	}
	m := s.TMult
	start := func(n float64) float64 { return s.T0 * (math.Pow(m, n) - 1) / (m - 1) }
	// The logarithm gives n, or a neighbour of it where rounding bites;
	// the comparisons with the exact boundaries settle it.
	n := math.Floor(math.Log(t/s.T0*(m-1)+1) / math.Log(m))
	for n > 0 && t < start(n) {
		n--
	}
	for t >= start(n+1) {
		n++
	}
	return t - start(n), s.T0 * math.Pow(m, n)
}

// String returns the schedule in ParseSchedule's syntax, without the base.
func (s Cosine) String() string {
	return "cosine:" + fmtFloat(s.T0) + ":" + fmtFloat(s.TMult) + ":" + fmtFloat(s.Min)
}

// Warmup ramps the learning rate up linearly over the first Epochs epochs
// and then follows Inner: for t < Epochs,
//
//	LRAt(t) = Inner(t) * (Start + (1 - Start) * t / Epochs)
//
// and Inner(t) afterwards. Inner is not shifted: warm-up scales its first
// epochs, as timm and Goyal et al.'s gradual warm-up do. With Start = 0 the
// first step has a learning rate of 0, so a per-epoch caller should give a
// positive Start or step the schedule per batch (LRAtStep); ParseSchedule
// uses Start = DefaultWarmupStart unless told otherwise.
type Warmup struct {
	Epochs float64 // length of the warm-up, > 0
	Start  float64 // fraction of Inner's rate at t = 0, in [0, 1]
	Inner  Schedule
}

// DefaultWarmupStart is the fraction of the learning rate a warm-up
// parsed by ParseSchedule starts from, unless the spec says otherwise.
const DefaultWarmupStart = 0.01

// LR returns the learning rate at the start of epoch.
func (s Warmup) LR(epoch int) float64 {
	return s.LRAt(float64(epoch))
}

// LRAt returns the learning rate at the fractional epoch t.
func (s Warmup) LRAt(t float64) float64 {
	var inner float64
	if ss, ok := s.Inner.(StepSchedule); ok {
		inner = ss.LRAt(t)
	} else {
		inner = s.Inner.LR(int(math.Floor(t)))
	}
	if t >= s.Epochs || s.Epochs <= 0 {
		return inner
	}
	return inner * (s.Start + (1-s.Start)*max(t, 0)/s.Epochs)
}

// String returns the schedule in ParseSchedule's syntax, without the base.
func (s Warmup) String() string {
	w := "warmup:" + fmtFloat(s.Epochs)
	if s.Start != DefaultWarmupStart {
		w += ":" + fmtFloat(s.Start)
	}
	return w + "+" + fmt.Sprint(s.Inner)
}

func fmtFloat(x float64) string {
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// scheduleExamples is the help text of ParseSchedule's errors.
const scheduleExamples = `constant, step:4,8:0.1, exp:0.9, inv:0.5, cosine:10:2:0, warmup:2+cosine:10`

// ParseSchedule parses a learning-rate schedule from the trainer's -lr-schedule
// flag; base is the learning rate it starts from (the -lr flag). The
// grammar, with epochs counted from 0 and numbers in Go's syntax:
//
//	spec    = [ warmup "+" ] sched | warmup
//	warmup  = "warmup:" EPOCHS [ ":" START ]       linear warm-up (Warmup); START
//	                                               defaults to DefaultWarmupStart
//	sched   = "constant"                           Constant
//	        | "step:" E1,E2,... [ ":" GAMMA ]      StepDecay; GAMMA defaults to 0.1
//	        | "exp:" GAMMA                         ExponentialDecay, 0 < GAMMA <= 1
//	        | "inv:" K                             InverseTime, K >= 0
//	        | "cosine:" T0 [ ":" TMULT [ ":" MIN ] ]  Cosine; TMULT defaults to 1,
//	                                               MIN to 0
//
// "warmup:2" alone warms up to a constant rate. Examples: "step:4,8:0.1"
// multiplies the rate by 0.1 at the start of epochs 4 and 8; "cosine:10:2:0"
// restarts after 10, 30, 70, ... epochs; "warmup:2+cosine:10" warms up for
// two epochs into cosine annealing. Every schedule it returns is a
// StepSchedule, and its String method gives back an equivalent spec.
func ParseSchedule(spec string, base float64) (Schedule, error) {
	if math.IsNaN(base) || math.IsInf(base, 0) || base < 0 {
		return nil, fmt.Errorf("learning rate %v must be a finite number >= 0", base)
	}
	spec = strings.TrimSpace(spec)
	s, err := parseSchedule(spec, base)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w (examples: %s)", spec, err, scheduleExamples)
	}
	return s, nil
}

func parseSchedule(spec string, base float64) (Schedule, error) {
	if rest, ok := strings.CutPrefix(spec, "warmup"); ok && (rest == "" || rest[0] == ':') {
		head, tail, hasInner := strings.Cut(spec, "+")
		args := strings.Split(head, ":")[1:]
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("warmup takes EPOCHS[:START], such as warmup:2 or warmup:2:0.1")
		}
		w := Warmup{Start: DefaultWarmupStart}
		var err error
		if w.Epochs, err = parseNum("warmup epochs", args[0]); err != nil {
			return nil, err
		}
		if w.Epochs <= 0 {
			return nil, fmt.Errorf("warmup epochs %v must be > 0", w.Epochs)
		}
		if len(args) == 2 {
			if w.Start, err = parseNum("warmup start", args[1]); err != nil {
				return nil, err
			}
			if w.Start < 0 || w.Start > 1 {
				return nil, fmt.Errorf("warmup start %v must be in [0, 1]", w.Start)
			}
		}
		w.Inner = Constant{Base: base}
		if hasInner {
			if w.Inner, err = parseBase(tail, base); err != nil {
				return nil, err
			}
		}
		return w, nil
	}
	if strings.Contains(spec, "+") {
		return nil, fmt.Errorf("only a warmup can come before \"+\", as in warmup:2+cosine:10")
	}
	return parseBase(spec, base)
}

func parseBase(spec string, base float64) (Schedule, error) {
	name, argStr, _ := strings.Cut(spec, ":")
	var args []string
	if argStr != "" {
		args = strings.Split(argStr, ":")
	}
	nargs := func(lo, hi int, usage string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%s takes %s", name, usage)
		}
		return nil
	}
	switch name {
	case "constant", "const":
		if err := nargs(0, 0, "no arguments"); err != nil {
			return nil, err
		}
		return Constant{Base: base}, nil
	case "step":
		if err := nargs(1, 2, "EPOCH,EPOCH,...[:GAMMA], such as step:4,8:0.1"); err != nil {
			return nil, err
		}
		s := StepDecay{Base: base, Gamma: 0.1}
		for _, f := range strings.Split(args[0], ",") {
			m, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || m < 0 {
				return nil, fmt.Errorf("step epoch %q is not an epoch number >= 0", f)
			}
			s.StepEpochs = append(s.StepEpochs, m)
		}
		if len(args) == 2 {
			var err error
			if s.Gamma, err = parseNum("step gamma", args[1]); err != nil {
				return nil, err
			}
			if s.Gamma < 0 {
				return nil, fmt.Errorf("step gamma %v must be >= 0", s.Gamma)
			}
		}
		return s, nil
	case "exp":
		if err := nargs(1, 1, "GAMMA, such as exp:0.9"); err != nil {
			return nil, err
		}
		g, err := parseNum("exp gamma", args[0])
		if err != nil {
			return nil, err
		}
		if g <= 0 || g > 1 {
			return nil, fmt.Errorf("exp gamma %v must be in (0, 1]", g)
		}
		return ExponentialDecay{Base: base, Gamma: g}, nil
	case "inv":
		if err := nargs(1, 1, "K, such as inv:0.5"); err != nil {
			return nil, err
		}
		k, err := parseNum("inv k", args[0])
		if err != nil {
			return nil, err
		}
		if k < 0 {
			return nil, fmt.Errorf("inv k %v must be >= 0", k)
		}
		return InverseTime{Base: base, K: k}, nil
	case "cosine":
		if err := nargs(1, 3, "T0[:TMULT[:MIN]], such as cosine:10:2:0"); err != nil {
			return nil, err
		}
		s := Cosine{Base: base, TMult: 1}
		var err error
		if s.T0, err = parseNum("cosine T0", args[0]); err != nil {
			return nil, err
		}
		if s.T0 <= 0 {
			return nil, fmt.Errorf("cosine T0 %v must be > 0 epochs", s.T0)
		}
		if len(args) >= 2 {
			if s.TMult, err = parseNum("cosine TMULT", args[1]); err != nil {
				return nil, err
			}
			if s.TMult < 1 {
				return nil, fmt.Errorf("cosine TMULT %v must be >= 1", s.TMult)
			}
		}
		if len(args) == 3 {
			if s.Min, err = parseNum("cosine MIN", args[2]); err != nil {
				return nil, err
			}
			if s.Min < 0 || s.Min > base {
				return nil, fmt.Errorf("cosine MIN %v must be in [0, %v], the base learning rate", s.Min, base)
			}
		}
		return s, nil
	case "warmup":
		return nil, fmt.Errorf("warmup must come first, as in warmup:2+cosine:10")
	case "":
		return nil, fmt.Errorf("empty schedule")
	}
	return nil, fmt.Errorf("unknown schedule %q; known schedules are constant, step, exp, inv, cosine and warmup", name)
}

// parseNum parses a finite float64 named what.
func parseNum(what, s string) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%s %q is not a number", what, s)
	}
	return x, nil
}

// CycleEnd reports whether a period of a cosine schedule with warm
// restarts (behind a warm-up or not) ends after epochs epochs: where the
// learning rate is at its lowest and a snapshot ensemble saves the model
// (Huang et al., "Snapshot ensembles", 2017). Other schedules have no
// periods.
func CycleEnd(s Schedule, epochs int) bool {
	switch s := s.(type) {
	case Warmup:
		return CycleEnd(s.Inner, epochs)
	case Cosine:
		if epochs <= 0 || s.T0 <= 0 {
			return false
		}
		tcur, ti := s.period(float64(epochs))
		return tcur < 1e-9*ti || ti-tcur < 1e-9*ti
	}
	return false
}

// HasCycles reports whether s is a cosine schedule with warm restarts,
// behind a warm-up or not: one whose CycleEnd can be true.
func HasCycles(s Schedule) bool {
	switch s := s.(type) {
	case Warmup:
		return HasCycles(s.Inner)
	case Cosine:
		return s.T0 > 0
	}
	return false
}
