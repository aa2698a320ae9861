package cuda

import (
	"fmt"

	"github.com/cnnc/cnnc/runtime"
)

// A Plan is how a compiled model runs on a GPU: where each tensor lives in
// one device arena, counted in 4-byte words, and the launches, in order,
// of a training step and of an inference pass. Package codegen/cuda makes
// it together with the CUDA source whose kernels it launches; the
// generated package holds both.
//
// The trainable parameters lie in one region [ParamBase, ParamBase +
// ParamWords); their gradients and momentum buffers lie in regions of the
// same layout at GradBase and VelocityBase, so that an SGD update is one
// launch of the source's SGDKernel over the whole region.
type Plan struct {
	Name       string // the model's name
	Batch      int    // the largest number of samples a call may pass
	InputShape []int  // one sample's shape
	Classes    int    // the length of a row of logits
	Words      int    // the arena's size
	Capability int    // the least compute capability the kernels need, 10*major + minor (0: any)

	State        []Tensor // parameters, then buffers, in initialisation order
	ParamBase    int
	ParamWords   int
	GradBase     int
	VelocityBase int

	Input  int // Batch samples of the input, float32
	Labels int // Batch labels, int32
	Step   int // the training step, an unsigned long long (two words) that Model.Train writes before each step; dropout kernels read it
	Loss   int // the training loss, one float32
	Logits int // the inference graph's logits, Batch rows of Classes

	Fills []Fill   // constants written once, when the model is made
	Train []Launch // a training step
	Infer []Launch // an inference pass
	// Prepare holds the launches of the inference graph that read only
	// parameters, buffers and constants (batch-norm folded into a
	// convolution's weights, say): Model.Infer runs them before Infer
	// when the state changed since they last ran.
	Prepare []Launch

	Outputs []Output // values Model.Read can return
}

// A Tensor is a parameter or buffer of the model.
type Tensor struct {
	Name      string // as in PyTorch's state_dict, such as "conv1.weight"
	Shape     []int
	Offset    int  // of the data, in words
	Trainable bool // a parameter (with a gradient), not a buffer
	Init      runtime.Init
}

// Size returns the tensor's number of elements.
func (t *Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// A Fill sets Count words at Offset to Value when the model is made.
type Fill struct {
	Offset, Count int
	Value         float32
}

// A Launch is one kernel launch. The grid depends on the number of samples
// n of the call; the block does not.
type Launch struct {
	Kernel string
	Grid   [3]Dim
	Block  [3]int
	Args   []Arg
}

// A Dim is a grid dimension that depends on the number of samples n of a
// call: ceil((Fixed + PerSample*n) / Div), at least 1. Div 0 counts as 1.
type Dim struct {
	Fixed, PerSample, Div int
}

// Eval returns the dimension for n samples.
func (d Dim) Eval(n int) int {
	div := max(d.Div, 1)
	v := (d.Fixed + d.PerSample*n + div - 1) / div
	return max(v, 1)
}

// An ArgKind says what a kernel argument is.
type ArgKind uint8

const (
	ArgPtr  ArgKind = iota // a pointer into the arena: Value is the offset in words
	ArgN                   // the number of samples of the call, an int
	ArgSeed                // a dropout seed: Value is the layer's seed, xored with the run's seed, an unsigned long long
	ArgInt                 // Value as an int
)

// An Arg is one argument of a launch.
type Arg struct {
	Kind  ArgKind
	Value uint64
}

// Ptr returns a pointer argument at offset words into the arena.
func Ptr(offset int) Arg { return Arg{Kind: ArgPtr, Value: uint64(offset)} }

// N is the argument that passes the number of samples.
var N = Arg{Kind: ArgN}

// Seed returns the dropout seed argument of a layer with the given seed.
func Seed(layer uint64) Arg { return Arg{Kind: ArgSeed, Value: layer} }

// Int returns a constant int argument.
func Int(v int) Arg { return Arg{Kind: ArgInt, Value: uint64(v)} }

// An Output is a value of the training or inference graph that
// Model.Read can return after a call, keyed as package ir/eval keys
// outputs: "value:logits", "loss:loss", "grad:conv1.weight",
// "update:bn1.running_mean". Batched values have Shape[0] = Batch, of
// which a call computes the first n rows.
type Output struct {
	Key     string
	Infer   bool // of the inference graph rather than the training graph
	Offset  int
	Shape   []int
	Batched bool
}

// SGDKernel is the kernel every generated source defines for SGDStep:
//
//	cnnc_sgd(float* w, const float* g, float* v, int count, float lr,
//	         float momentum, float weightDecay, int nesterov, int first)
const SGDKernel = "cnnc_sgd"

// Validate reports whether the plan is consistent: every offset inside the
// arena, every launch with a kernel, a positive block and arguments it can
// pass.
func (p *Plan) Validate() error {
	if p.Batch < 1 || p.Classes < 1 || p.Words < 1 {
		return fmt.Errorf("plan %q: batch %d, classes %d and arena size %d must be positive", p.Name, p.Batch, p.Classes, p.Words)
	}
	sample := 1
	for _, d := range p.InputShape {
		sample *= d
	}
	in := func(what string, off, n int) error {
		if off < 0 || n < 0 || off+n > p.Words {
			return fmt.Errorf("plan %q: %s [%d, %d) lies outside the arena of %d words", p.Name, what, off, off+n, p.Words)
		}
		return nil
	}
	checks := []error{
		in("input", p.Input, p.Batch*sample),
		in("labels", p.Labels, p.Batch),
		in("step", p.Step, 2),
		in("loss", p.Loss, 1),
		in("logits", p.Logits, p.Batch*p.Classes),
		in("parameters", p.ParamBase, p.ParamWords),
		in("gradients", p.GradBase, p.ParamWords),
		in("momentum", p.VelocityBase, p.ParamWords),
	}
	for _, t := range p.State {
		checks = append(checks, in(t.Name, t.Offset, t.Size()))
		if t.Trainable && (t.Offset < p.ParamBase || t.Offset+t.Size() > p.ParamBase+p.ParamWords) {
			checks = append(checks, fmt.Errorf("plan %q: parameter %s lies outside the parameter region", p.Name, t.Name))
		}
		if err := t.Init.Validate(); err != nil {
			checks = append(checks, fmt.Errorf("plan %q: %s: %w", p.Name, t.Name, err))
		}
	}
	for _, f := range p.Fills {
		checks = append(checks, in("constant", f.Offset, f.Count))
	}
	for _, o := range p.Outputs {
		n := 1
		for _, d := range o.Shape {
			n *= d
		}
		checks = append(checks, in(o.Key, o.Offset, n))
	}
	if p.Step%2 != 0 {
		checks = append(checks, fmt.Errorf("plan %q: the step word at %d is not 8-byte aligned", p.Name, p.Step))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	for _, seq := range [][]Launch{p.Train, p.Infer, p.Prepare} {
		for _, l := range seq {
			if l.Kernel == "" || l.Block[0] < 1 || l.Block[1] < 1 || l.Block[2] < 1 || l.Block[0]*l.Block[1]*l.Block[2] > 1024 {
				return fmt.Errorf("plan %q: launch of %q has block %v; want 1 to 1024 threads", p.Name, l.Kernel, l.Block)
			}
			for _, a := range l.Args {
				if a.Kind == ArgPtr && a.Value >= uint64(p.Words) {
					return fmt.Errorf("plan %q: launch of %q passes offset %d outside the arena of %d words", p.Name, l.Kernel, a.Value, p.Words)
				}
				if a.Kind > ArgInt {
					return fmt.Errorf("plan %q: launch of %q has an argument of unknown kind %d", p.Name, l.Kernel, a.Kind)
				}
			}
		}
	}
	return nil
}
