package gocode

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
)

// A Kernel is the Go code that computes one node: the values it reads, the
// scratch memory it owns and one or more phases of code run one after the
// other. The generator turns each phase into a function
//
//	func name(n, lo, hi int, <args>, y []float32, <scratch>[, seed, step uint64])
//
// where n is the number of samples in the call, [lo, hi) is the part of the
// phase's range this call computes, the args are the node's arguments that
// Args names ([]int32 for labels, []float32 otherwise), y is the node's
// output (a scalar is a one-element slice) and seed and step are passed
// when Step is set (seed already combines the node's seed with the model's
// run seed), and pool, the model's *runtime.Pool, comes last when Pool is
// set. Bodies may name math.X, runtime.X, gemm.X (runtime/gemm) and elem.X
// (runtime/elem); the generator imports those packages through jennifer.
type Kernel struct {
	Args []Arg
	// Results names the other values of an op with several (see
	// ir.OpResult): each Arg's Index is a result's index, and its slice
	// comes after y in the signature.
	Results []Arg
	Scratch []Scratch
	Step    bool
	// Pool passes the model's pool to the phases, for a Serial phase that
	// splits its own work, such as a GEMM through gemm.SgemmPar.
	Pool bool
	// RowCols, when not 0, is the row length of a weight gradient that
	// the kernel computes whole and can hand to an optimiser by rows
	// (gemm.SgemmRows): its phases then take rows *runtime.RowUpdate
	// last, the model's GradHook.Rows for the weight where the weight's
	// gradient hook comes right after the kernel, and nil otherwise.
	RowCols int
	// Handoff makes the phases take from, to *gemm.Handoff last: a
	// linear layer's forward product (gemm.SgemmHandoff) takes its
	// input ready packed from the layer before where that layer is
	// linear too, and hands its output on where the next layer is; nil
	// where there is no such layer.
	Handoff bool
	Phases  []Phase
}

// An Arg names one argument of the node in a kernel's signature.
type Arg struct {
	Name  string // parameter name in the kernel function
	Index int    // index in the node's Args
}

// A Scratch is memory a kernel owns. New allocates it once; it lives as long
// as the model.
type Scratch struct {
	Name    string
	Size    int
	Float64 bool
}

// A Split says how a phase is spread over the worker pool.
type Split uint8

const (
	// Serial runs the phase once on the calling goroutine with lo = 0,
	// hi = 1.
	Serial Split = iota
	// PerSample splits the samples [0, n) of the call.
	PerSample
	// PerIndex splits [0, Count), a range fixed at compile time such as the
	// output channels of a weight gradient. A phase that reduces over the
	// batch uses it so that each sum is computed by one worker, in order.
	PerIndex
	// PerSlot splits the slots [0, k) with k = min(n, Count); slot i
	// computes samples [i*n/k, (i+1)*n/k) and owns part i of the kernel's
	// slot-sized scratch (an im2col buffer, a partial sum). How samples
	// fall into slots depends on n alone, never on the number of workers,
	// so per-slot partial sums added in slot order give the same bits on
	// any pool.
	PerSlot
)

// A Phase is one step of a kernel.
type Phase struct {
	Name  string // suffix of the phase's function name; "" for a lone phase
	Split Split
	Count int    // PerIndex: the range to split; PerSlot: the most slots
	Body  string // Go statements
}

// An Emitter writes the kernel for one node. The generator looks emitters up
// by op; a target replaces the ones it does better (see package codegen).
type Emitter interface {
	Emit(n *ir.Node, c *Context) (*Kernel, error)
}

// EmitFunc adapts a function to the Emitter interface.
type EmitFunc func(n *ir.Node, c *Context) (*Kernel, error)

// Emit calls f.
func (f EmitFunc) Emit(n *ir.Node, c *Context) (*Kernel, error) { return f(n, c) }

// A Context tells an emitter what it cannot see on the node alone.
type Context struct {
	Batch   int // the graph's batch size, the length of axis 0 of a batched value
	batched map[*ir.Node]bool
	graph   *ir.Graph
	mem     *passes.MemoryPlan
	// The weights that may lie as column panels and the products that
	// compute their gradients: see panelWeights.
	panels map[string]bool
	grads  map[*ir.Node]bool
}

// HasResult reports whether the graph uses result i of n, an op with
// several; a kernel may skip computing one it does not.
func (c *Context) HasResult(n *ir.Node, i int) bool { return c.graph.Results(n)[i] != nil }

// Dies reports whether nothing reads argument i of n after n, so that
// n's kernel may overwrite it once it has read it.
func (c *Context) Dies(n *ir.Node, i int) bool { return c.mem.Dies(n, i) }

// Batched reports whether axis 0 of n's value is the batch, so that a call
// with n samples computes only its first n rows.
func (c *Context) Batched(n *ir.Node) bool { return c.batched[n] }

// PerSample returns the number of elements of one sample of n when n is
// batched, and its size otherwise.
func (c *Context) PerSample(n *ir.Node) int {
	if c.batched[n] {
		return n.Shape.Size() / n.Shape[0]
	}
	return n.Shape.Size()
}

// DefaultEmitters returns the pure Go emitters, one per computing op. The
// caller may change the map it gets.
func DefaultEmitters() map[ir.Op]Emitter {
	m := map[ir.Op]Emitter{}
	for op, f := range defaultEmitters {
		m[op] = f
	}
	return m
}

var defaultEmitters = map[ir.Op]EmitFunc{
	ir.OpConv2D:                      emitConv2D,
	ir.OpConv2DReLU:                  emitConv2D,
	ir.OpConv2DTanh:                  emitConv2D,
	ir.OpLinearReLU:                  emitLinear,
	ir.OpLinearTanh:                  emitLinear,
	ir.OpFoldBNWeight:                emitFoldBNWeight,
	ir.OpFoldBNBias:                  emitFoldBNBias,
	ir.OpBatchNormReLU:               emitBatchNorm,
	ir.OpBatchNormReLUBackward:       emitBatchNormBackward,
	ir.OpBatchNormReLUBackwardGamma:  emitBatchNormBackwardGamma,
	ir.OpReLUBiasGrad:                emitBiasGrad,
	ir.OpConv2DBNReLU:                emitConvBNReLU,
	ir.OpConv2DBNReLUBackward:        emitConvBNReLUBackward,
	ir.OpConv2DBackwardData:          emitConv2DBackwardData,
	ir.OpConv2DBackwardFilter:        emitConv2DBackwardFilter,
	ir.OpMaxPool:                     emitMaxPool,
	ir.OpAvgPool:                     emitPool,
	ir.OpMaxPoolBackward:             emitMaxPoolBackwardFast,
	ir.OpMaxPoolReLUBackward:         emitMaxPoolBackwardFast,
	ir.OpAvgPoolBackward:             emitAvgPoolBackward,
	ir.OpLinear:                      emitLinear,
	ir.OpLinearBackwardData:          emitLinearBackwardData,
	ir.OpLinearBackwardWeight:        emitLinearBackwardWeight,
	ir.OpReLU:                        emitUnary,
	ir.OpLeakyReLU:                   emitUnary,
	ir.OpTanh:                        emitUnary,
	ir.OpSigmoid:                     emitUnary,
	ir.OpScale:                       emitUnary,
	ir.OpDropout:                     emitUnary,
	ir.OpDropoutBackward:             emitUnary,
	ir.OpAdd:                         emitBinary,
	ir.OpReLUBackward:                emitBinary,
	ir.OpLeakyReLUBackward:           emitBinary,
	ir.OpTanhBackward:                emitBinary,
	ir.OpSigmoidBackward:             emitBinary,
	ir.OpBiasGrad:                    emitBiasGrad,
	ir.OpBatchNorm:                   emitBatchNorm,
	ir.OpBatchNormInfer:              emitBatchNormInfer,
	ir.OpRunningMean:                 emitRunningStat,
	ir.OpRunningVar:                  emitRunningStat,
	ir.OpBatchNormBackward:           emitBatchNormBackward,
	ir.OpBatchNormBackwardGamma:      emitBatchNormBackwardGamma,
	ir.OpSoftmax:                     emitSoftmax,
	ir.OpSoftmaxBackward:             emitSoftmaxBackward,
	ir.OpSoftmaxCrossEntropy:         emitSoftmaxCrossEntropy,
	ir.OpSoftmaxCrossEntropyBackward: emitSoftmaxCrossEntropyBackward,
	ir.OpSVMLoss:                     emitSVMLoss,
	ir.OpSVMLossBackward:             emitSVMLossBackward,
	ir.OpL2:                          emitPenalty,
	ir.OpL1:                          emitPenalty,
	ir.OpElasticNet:                  emitPenalty,
	ir.OpL2Backward:                  emitPenaltyBackward,
	ir.OpL1Backward:                  emitPenaltyBackward,
	ir.OpElasticNetBackward:          emitPenaltyBackward,
}

// expand fills a kernel template. Templates see the fields of data and
// the helpers below.
func expand(text string, data any) string {
	t := template.Must(template.New("").Funcs(template.FuncMap{
		"mul": func(a int, b ...int) int {
			for _, x := range b {
				a *= x
			}
			return a
		},
		"add": func(a, b int) int { return a + b },
		"sub": func(a, b int) int { return a - b },
		"seq": func(n int) []int {
			s := make([]int, n)
			for i := range s {
				s[i] = i
			}
			return s
		},
		"f32": f32lit,
		"f64": f64lit,
	}).Parse(text))
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		panic(fmt.Sprintf("gocode: kernel template: %v", err)) // a bug in a template
	}
	return b.String()
}

// f32lit formats v as a float32 constant expression.
func f32lit(v float64) string { return "float32(" + f64lit(v) + ")" }

// f64lit formats v as an untyped float constant that round-trips.
func f64lit(v float64) string {
	s := fmt.Sprintf("%v", v)
	if !strings.ContainsAny(s, ".eE") && !strings.Contains(s, "Inf") && !strings.Contains(s, "NaN") {
		s += ".0"
	}
	return s
}

// scaled formats v*k, leaving out a factor of 1.
func scaled(v string, k int) string {
	if k == 1 {
		return v
	}
	return fmt.Sprintf("%s*%d", v, k)
}
