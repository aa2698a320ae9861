package ir

import (
	"fmt"
	"hash/fnv"
	"runtime"
	"sort"
	"strings"
)

// A Builder builds a graph from layer calls, the way model files declare
// networks. Its methods never panic: a mistake is recorded with the
// caller's position and reported by [Graph.Validate], and the method
// returns a node that later calls accept without piling up more errors.
type Builder struct {
	g      *Graph
	layers map[string]Pos   // layer name -> where it was declared
	names  map[string]*Node // parameter and buffer names
	broken map[*Node]bool   // nodes whose shape could not be worked out
	pos    Pos              // position of the call being built
	op     Op               // op of the call being built, named in its errors
}

// at notes the position of the user's call being built and its op.
func (b *Builder) at(op Op) {
	b.pos, b.op = callerPos(), op
}

// NewBuilder returns a builder for a graph called name whose calls take up
// to batch samples.
func NewBuilder(name string, batch int) *Builder {
	b := &Builder{
		g:      NewGraph(name, batch),
		layers: map[string]Pos{},
		names:  map[string]*Node{},
		broken: map[*Node]bool{},
	}
	b.at(OpInvalid)
	if batch < 1 {
		b.errorf("", "batch size is %d, want at least 1", batch)
	}
	if !isIdent(name) {
		b.errorf("", "model name %q must be a lowercase Go identifier such as \"lenet5\"", name)
	}
	return b
}

// Graph returns the graph built so far. Call [Graph.Validate] on it to see
// the mistakes the builder met.
func (b *Builder) Graph() *Graph { return b.g }

// An Option adjusts a layer. Each layer says which options it takes.
type Option struct {
	kind  optKind
	apply func(*options)
}

type optKind uint16

const (
	optStride optKind = 1 << iota
	optPad
	optDilation
	optGroups
	optNoBias
	optWeightInit
	optBiasInit
	optEps
	optMomentum
	optClassic
)

var optNames = map[optKind]string{
	optStride: "Stride", optPad: "Pad", optDilation: "Dilation", optGroups: "Groups",
	optNoBias: "NoBias", optWeightInit: "WeightInit", optBiasInit: "BiasInit",
	optEps: "Eps", optMomentum: "Momentum", optClassic: "Classic",
}

type options struct {
	stride, pad, dilation [2]int
	groups                int
	noBias                bool
	weightInit, biasInit  *InitSpec
	eps, momentum         float64
	classic               bool
}

// Stride sets a convolution's or pool's step, the same along both axes,
// or (height, width) when given two values.
func Stride(s ...int) Option {
	return Option{optStride, func(o *options) { o.stride = pair(s) }}
}

// Pad sets the zero padding on each side, for both axes or (height, width).
func Pad(p ...int) Option { return Option{optPad, func(o *options) { o.pad = pair(p) }} }

// Dilation sets the spacing of a convolution's kernel taps.
func Dilation(d ...int) Option {
	return Option{optDilation, func(o *options) { o.dilation = pair(d) }}
}

// Groups splits a convolution's channels into g independent groups.
func Groups(g int) Option { return Option{optGroups, func(o *options) { o.groups = g }} }

// NoBias leaves out a convolution's or linear layer's bias, as before a
// batch-norm.
func NoBias() Option { return Option{optNoBias, func(o *options) { o.noBias = true }} }

// WeightInit sets how a layer's weight starts (see [InitSpec]); the fans
// are filled in from the layer's shape.
func WeightInit(scheme string, value float64, mode ...string) Option {
	spec := InitSpec{Scheme: scheme, Value: value}
	if len(mode) > 0 {
		spec.Mode = mode[0]
	}
	return Option{optWeightInit, func(o *options) { o.weightInit = &spec }}
}

// BiasInit sets how a layer's bias starts.
func BiasInit(scheme string, value float64) Option {
	spec := InitSpec{Scheme: scheme, Value: value}
	return Option{optBiasInit, func(o *options) { o.biasInit = &spec }}
}

// Eps sets the number batch-norm adds to the variance (default 1e-5).
func Eps(eps float64) Option { return Option{optEps, func(o *options) { o.eps = eps }} }

// Momentum sets the weight of each batch in batch-norm's running
// statistics (default 0.1, as PyTorch).
func Momentum(m float64) Option { return Option{optMomentum, func(o *options) { o.momentum = m }} }

// Classic makes dropout classic: training keeps activations unscaled and
// inference multiplies them by the keep probability. The default is
// inverted dropout, which scales by 1/keep in training.
func Classic() Option { return Option{optClassic, func(o *options) { o.classic = true }} }

// optList names the options in allowed: "NoBias, WeightInit or BiasInit".
func optList(allowed optKind) string {
	var names []string
	for k := optKind(1); k != 0 && k <= optClassic; k <<= 1 {
		if allowed&k != 0 {
			names = append(names, optNames[k])
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func pair(v []int) [2]int {
	switch len(v) {
	case 1:
		return [2]int{v[0], v[0]}
	case 2:
		return [2]int{v[0], v[1]}
	}
	return [2]int{-1, -1}
}

// opts applies the options a layer allows and reports the others.
func (b *Builder) opts(layer string, allowed optKind, given []Option) options {
	o := options{stride: [2]int{1, 1}, dilation: [2]int{1, 1}, groups: 1, eps: 1e-5, momentum: 0.1}
	for _, opt := range given {
		if opt.apply == nil {
			continue
		}
		if opt.kind&allowed == 0 {
			b.errorf(layer, "option %s does not apply to this layer, which takes %s", optNames[opt.kind], optList(allowed))
			continue
		}
		opt.apply(&o)
	}
	return o
}

// Input declares a batch of samples fed by the caller, each of shape dims
// (C, H, W for images, F for feature vectors).
func (b *Builder) Input(name string, dims ...int) *Node {
	b.at(OpInput)
	if len(dims) != 1 && len(dims) != 3 {
		b.errorf(name, "has %d dimensions %v, want 3 (channels, height, width) or 1 (features)", len(dims), Shape(dims))
	}
	for _, d := range dims {
		if d < 1 {
			b.errorf(name, "dimensions %v must all be at least 1", Shape(dims))
			break
		}
	}
	n := b.add(OpInput, name, Attrs{Name: name}, append(Shape{b.g.Batch}, dims...))
	b.claimName(n, name)
	return n
}

// Labels declares a batch of class indices in [0, classes).
func (b *Builder) Labels(name string, classes int) *Node {
	b.at(OpLabels)
	if classes < 2 {
		b.errorf(name, "number of classes is %d, want at least 2", classes)
	}
	n := b.add(OpLabels, name, Attrs{Name: name, Classes: classes}, Shape{b.g.Batch})
	b.claimName(n, name)
	return n
}

// Param declares a trainable parameter of the given shape, named as in
// PyTorch's state_dict. Layers declare their own parameters; Param is for
// the rare model that needs a bare one.
func (b *Builder) Param(name string, init InitSpec, dims ...int) *Node {
	b.at(OpParam)
	return b.state(OpParam, "", name, init, Shape(dims))
}

// state adds a parameter or buffer.
func (b *Builder) state(op Op, layer, name string, init InitSpec, shape Shape) *Node {
	n := b.add(op, layer, Attrs{Name: name, Init: init}, shape.Clone())
	if !knownScheme(init.Scheme) {
		b.errorf(layer, "unknown initialiser %q for %s; use one of %s", init.Scheme, name, strings.Join(InitSchemes, ", "))
	}
	if init.Mode != "" && init.Mode != "fan_in" && init.Mode != "fan_out" {
		b.errorf(layer, "initialiser mode %q for %s must be \"fan_in\" or \"fan_out\"", init.Mode, name)
	}
	b.claimName(n, name)
	return n
}

// Conv2D adds a 2-d convolution layer with in input channels, out output
// channels and a k x k kernel (Stride, Pad, Dilation, Groups, NoBias,
// WeightInit and BiasInit adjust it). Its parameters are name.weight
// [out, in/groups, k, k] and name.bias [out].
func (b *Builder) Conv2D(name string, x *Node, in, out, k int, opts ...Option) *Node {
	b.at(OpConv2D)
	if !b.layer(name) {
		return b.brokenNode(OpConv2D, name, x)
	}
	o := b.opts(name, optStride|optPad|optDilation|optGroups|optNoBias|optWeightInit|optBiasInit, opts)
	if in < 1 || out < 1 || k < 1 {
		b.errorf(name, "channels (%d in, %d out) and kernel size %d must all be at least 1", in, out, k)
		return b.brokenNode(OpConv2D, name, x)
	}
	if o.groups < 1 || in%o.groups != 0 || out%o.groups != 0 {
		b.errorf(name, "%d input and %d output channels do not split into %d groups", in, out, o.groups)
		return b.brokenNode(OpConv2D, name, x)
	}
	fanIn, fanOut := in/o.groups*k*k, out/o.groups*k*k
	w := b.state(OpParam, name, name+".weight", initFor(o.weightInit, fanIn, fanOut), Shape{out, in / o.groups, k, k})
	args := []*Node{x, w}
	if !o.noBias {
		args = append(args, b.state(OpParam, name, name+".bias", initFor(o.biasInit, fanIn, fanOut), Shape{out}))
	}
	return b.compute(OpConv2D, name, Attrs{Stride: o.stride, Pad: o.pad, Dilation: o.dilation, Groups: o.groups}, args...)
}

// Linear adds a fully connected layer from in to out features. Its
// parameters are name.weight [out, in] and name.bias [out].
func (b *Builder) Linear(name string, x *Node, in, out int, opts ...Option) *Node {
	b.at(OpLinear)
	if !b.layer(name) {
		return b.brokenNode(OpLinear, name, x)
	}
	o := b.opts(name, optNoBias|optWeightInit|optBiasInit, opts)
	if in < 1 || out < 1 {
		b.errorf(name, "features (%d in, %d out) must be at least 1", in, out)
		return b.brokenNode(OpLinear, name, x)
	}
	w := b.state(OpParam, name, name+".weight", initFor(o.weightInit, in, out), Shape{out, in})
	args := []*Node{x, w}
	if !o.noBias {
		args = append(args, b.state(OpParam, name, name+".bias", initFor(o.biasInit, in, out), Shape{out}))
	}
	return b.compute(OpLinear, name, Attrs{}, args...)
}

// initFor returns the given initialiser, or PyTorch's default, with the
// layer's fans filled in.
func initFor(spec *InitSpec, fanIn, fanOut int) InitSpec {
	s := InitSpec{Scheme: "torch_default"}
	if spec != nil {
		s = *spec
	}
	s.FanIn, s.FanOut = fanIn, fanOut
	return s
}

// MaxPool adds max pooling over k x k windows; the stride defaults to k.
func (b *Builder) MaxPool(x *Node, k int, opts ...Option) *Node {
	b.at(OpMaxPool)
	return b.pool(OpMaxPool, x, k, opts)
}

// AvgPool adds average pooling over k x k windows; the stride defaults to
// k. Padding counts in the divisor, as PyTorch's default.
func (b *Builder) AvgPool(x *Node, k int, opts ...Option) *Node {
	b.at(OpAvgPool)
	return b.pool(OpAvgPool, x, k, opts)
}

func (b *Builder) pool(op Op, x *Node, k int, opts []Option) *Node {
	o := b.opts("", optStride|optPad, opts)
	stride := [2]int{k, k}
	for _, opt := range opts {
		if opt.kind == optStride {
			stride = o.stride
		}
	}
	return b.compute(op, "", Attrs{Kernel: [2]int{k, k}, Stride: stride, Pad: o.pad}, x)
}

// Flatten views [N, C, H, W] as [N, C*H*W].
func (b *Builder) Flatten(x *Node) *Node {
	b.at(OpInvalid)
	if !b.ours(x) {
		b.errorf("", "flatten: the input is nil or comes from another graph")
		return b.brokenNode(OpReshape, "")
	}
	if b.broken[x] {
		return b.brokenNode(OpReshape, "", x)
	}
	if len(x.Shape) < 2 {
		b.errorf("", "flatten: input has shape %v, want a batch of samples", x.Shape)
		return b.brokenNode(OpReshape, "", x)
	}
	return b.add(OpReshape, "", Attrs{}, Shape{x.Shape[0], x.Shape.Size() / x.Shape[0]}, x)
}

// ReLU adds max(x, 0).
func (b *Builder) ReLU(x *Node) *Node {
	b.at(OpReLU)
	return b.compute(OpReLU, "", Attrs{}, x)
}

// LeakyReLU adds x for x > 0 and alpha*x otherwise.
func (b *Builder) LeakyReLU(x *Node, alpha float64) *Node {
	b.at(OpLeakyReLU)
	return b.compute(OpLeakyReLU, "", Attrs{Alpha: alpha}, x)
}

// Tanh adds tanh(x).
func (b *Builder) Tanh(x *Node) *Node {
	b.at(OpTanh)
	return b.compute(OpTanh, "", Attrs{}, x)
}

// Sigmoid adds 1/(1+exp(-x)).
func (b *Builder) Sigmoid(x *Node) *Node {
	b.at(OpSigmoid)
	return b.compute(OpSigmoid, "", Attrs{}, x)
}

// BatchNorm adds batch normalisation over the channels of [N, C, H, W]
// (BatchNorm2d) or the features of [N, C] (BatchNorm1d). Training uses the
// batch's statistics and updates the running ones; inference uses the
// running ones. Its parameters are name.weight and name.bias, its buffers
// name.running_mean and name.running_var.
func (b *Builder) BatchNorm(name string, x *Node, channels int, opts ...Option) *Node {
	b.at(OpBatchNorm)
	if !b.layer(name) {
		return b.brokenNode(OpBatchNorm, name, x)
	}
	o := b.opts(name, optEps|optMomentum, opts)
	if channels < 1 {
		b.errorf(name, "number of channels is %d, want at least 1", channels)
		return b.brokenNode(OpBatchNorm, name, x)
	}
	c := Shape{channels}
	gamma := b.state(OpParam, name, name+".weight", InitSpec{Scheme: "ones"}, c)
	beta := b.state(OpParam, name, name+".bias", InitSpec{Scheme: "zeros"}, c)
	mean := b.state(OpBuffer, name, name+".running_mean", InitSpec{Scheme: "zeros"}, c)
	variance := b.state(OpBuffer, name, name+".running_var", InitSpec{Scheme: "ones"}, c)
	if b.ours(x) && !b.broken[x] && len(x.Shape) >= 2 && x.Shape[1] != channels {
		b.errorf(name, "input has %d channels, the layer expects %d", x.Shape[1], channels)
		return b.brokenNode(OpBatchNorm, name, x)
	}
	y := b.compute(OpBatchNorm, name, Attrs{Eps: o.eps}, x, gamma, beta, mean, variance)
	if b.broken[y] {
		return y
	}
	um := b.compute(OpRunningMean, name, Attrs{Momentum: o.momentum}, x, mean)
	uv := b.compute(OpRunningVar, name, Attrs{Momentum: o.momentum}, x, variance)
	b.g.Outputs = append(b.g.Outputs,
		Output{Kind: OutUpdate, Name: mean.Attrs.Name, Node: um},
		Output{Kind: OutUpdate, Name: variance.Attrs.Name, Node: uv})
	return y
}

// Dropout adds dropout that keeps each activation with probability keep
// during training: inverted by default, classic with [Classic]. Each
// dropout layer draws its own masks, seeded from its name.
func (b *Builder) Dropout(name string, x *Node, keep float64, opts ...Option) *Node {
	b.at(OpDropout)
	if !b.layer(name) {
		return b.brokenNode(OpDropout, name, x)
	}
	o := b.opts(name, optClassic, opts)
	return b.compute(OpDropout, name, Attrs{Keep: keep, Classic: o.classic, Seed: NameSeed(name)}, x)
}

// NameSeed returns the dropout seed of a layer called name: the 64-bit
// FNV-1a hash of its bytes.
func NameSeed(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// Add adds x + y element-wise.
func (b *Builder) Add(x, y *Node) *Node {
	b.at(OpAdd)
	return b.compute(OpAdd, "", Attrs{}, x, y)
}

// Scale adds alpha*x.
func (b *Builder) Scale(x *Node, alpha float64) *Node {
	b.at(OpScale)
	return b.compute(OpScale, "", Attrs{Alpha: alpha}, x)
}

// Softmax adds the soft-max over the classes of [N, K].
func (b *Builder) Softmax(x *Node) *Node {
	b.at(OpSoftmax)
	return b.compute(OpSoftmax, "", Attrs{}, x)
}

// SoftmaxCrossEntropy adds the mean cross-entropy of softmax(logits)
// against the labels: a scalar loss.
func (b *Builder) SoftmaxCrossEntropy(logits, labels *Node) *Node {
	b.at(OpSoftmaxCrossEntropy)
	return b.compute(OpSoftmaxCrossEntropy, "", Attrs{}, logits, labels)
}

// SVMLoss adds the multiclass SVM (hinge) loss with margin 1, averaged
// over the batch: a scalar loss.
func (b *Builder) SVMLoss(scores, labels *Node) *Node {
	b.at(OpSVMLoss)
	return b.compute(OpSVMLoss, "", Attrs{Margin: 1}, scores, labels)
}

// L2 adds lambda times the sum of squares of the named parameters.
func (b *Builder) L2(lambda float64, params ...string) *Node {
	b.at(OpL2)
	return b.regularise(OpL2, Attrs{Lambda: lambda}, params)
}

// L1 adds lambda times the sum of absolute values of the named parameters.
func (b *Builder) L1(lambda float64, params ...string) *Node {
	b.at(OpL1)
	return b.regularise(OpL1, Attrs{Lambda: lambda}, params)
}

// ElasticNet adds lambda times the sum of beta*w^2 + |w| over the named
// parameters.
func (b *Builder) ElasticNet(lambda, beta float64, params ...string) *Node {
	b.at(OpElasticNet)
	return b.regularise(OpElasticNet, Attrs{Lambda: lambda, Beta: beta}, params)
}

func (b *Builder) regularise(op Op, attrs Attrs, params []string) *Node {
	if len(params) == 0 {
		b.errorf("", "name at least one parameter to regularise, such as \"fc1.weight\"")
		return b.brokenNode(op, "")
	}
	var sum *Node
	for _, name := range params {
		p := b.names[name]
		if p == nil || p.Op != OpParam {
			b.errorf("", "unknown parameter %q; the model has %s", name, b.paramList())
			return b.brokenNode(op, "")
		}
		term := b.compute(op, "", attrs, p)
		if sum == nil {
			sum = term
		} else {
			sum = b.compute(OpAdd, "", Attrs{}, sum, term)
		}
	}
	return sum
}

func (b *Builder) paramList() string {
	var names []string
	for name, n := range b.names {
		if n.Op == OpParam {
			names = append(names, fmt.Sprintf("%q", name))
		}
	}
	if len(names) == 0 {
		return "no parameters yet (declare the layers first)"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Output names a value the compiled model hands back, such as "logits".
func (b *Builder) Output(name string, n *Node) {
	b.at(OpInvalid)
	if !b.ours(n) {
		b.errorf("", "output %q is nil or comes from another graph", name)
		return
	}
	for _, o := range b.g.Outputs {
		if o.Kind == OutValue && o.Name == name {
			b.errorf("", "output %q is declared twice", name)
			return
		}
	}
	b.g.Outputs = append(b.g.Outputs, Output{Kind: OutValue, Name: name, Node: n})
}

// Loss declares the scalar that training minimises.
func (b *Builder) Loss(n *Node) {
	b.at(OpInvalid)
	if !b.ours(n) {
		b.errorf("", "the loss is nil or comes from another graph")
		return
	}
	if b.g.Loss() != nil {
		b.errorf("", "the loss is declared twice; add the terms together with Add and declare the sum once")
		return
	}
	if !b.broken[n] && len(n.Shape) != 0 {
		b.errorf("", "the loss must be a scalar, got shape %v; use a loss op such as SoftmaxCrossEntropy", n.Shape)
		return
	}
	b.g.Outputs = append(b.g.Outputs, Output{Kind: OutLoss, Name: "loss", Node: n})
}

// compute adds a computed node, working out its shape. A node whose shape
// cannot be worked out is recorded as broken, and so is every node that
// takes a broken one, without further messages.
func (b *Builder) compute(op Op, layer string, attrs Attrs, args ...*Node) *Node {
	for _, a := range args {
		if a == nil {
			b.errorOp(op, layer, "an argument is nil")
			return b.brokenNode(op, layer)
		}
		if !b.ours(a) {
			b.errorOp(op, layer, "an argument comes from another graph")
			return b.brokenNode(op, layer)
		}
		if b.broken[a] {
			return b.brokenNode(op, layer, args...)
		}
	}
	n := b.add(op, layer, attrs, nil, args...)
	shape, msgs := inferShape(n, b.g.Batch)
	for _, m := range msgs {
		b.g.errs = append(b.g.errs, &Error{Pos: b.pos, Op: op, Layer: layer, Msg: m})
	}
	if shape == nil || len(msgs) > 0 {
		b.broken[n] = true
		return n
	}
	n.Shape = shape
	return n
}

func (b *Builder) add(op Op, layer string, attrs Attrs, shape Shape, args ...*Node) *Node {
	n := b.g.Add(op, shape, attrs, args...)
	n.Layer, n.Pos = layer, b.pos
	return n
}

// brokenNode returns a placeholder for a layer that could not be built.
func (b *Builder) brokenNode(op Op, layer string, args ...*Node) *Node {
	var keep []*Node
	for _, a := range args {
		if a != nil {
			keep = append(keep, a)
		}
	}
	n := b.add(op, layer, Attrs{}, nil, keep...)
	b.broken[n] = true
	return n
}

// layer records a layer name and reports whether it is new: a layer
// whose name is taken is not built, so that its parameters' names do not
// clash as well.
func (b *Builder) layer(name string) bool {
	if !isIdent(name) {
		b.errorf(name, "layer name %q must be an identifier such as \"conv1\" (letters, digits and _)", name)
	}
	if prev, ok := b.layers[name]; ok {
		b.errorf(name, "layer name is used twice (first at %s)", prev)
		return false
	}
	b.layers[name] = b.pos
	return true
}

func (b *Builder) claimName(n *Node, name string) {
	if prev, ok := b.names[name]; ok {
		b.errorf(n.Layer, "name %q is used twice (first at %s)", name, prev.Pos)
		return
	}
	b.names[name] = n
}

// ours reports whether n is a node of the graph being built.
func (b *Builder) ours(n *Node) bool {
	return n != nil && n.ID >= 0 && n.ID < len(b.g.Nodes) && b.g.Nodes[n.ID] == n
}

// errorf records an error at the call being built.
func (b *Builder) errorf(layer, format string, args ...any) {
	b.errorOp(b.op, layer, format, args...)
}

func (b *Builder) errorOp(op Op, layer, format string, args ...any) {
	b.g.errs = append(b.g.errs, &Error{Pos: b.pos, Op: op, Layer: layer, Msg: fmt.Sprintf(format, args...)})
}

func knownScheme(s string) bool {
	for _, k := range InitSchemes {
		if s == k {
			return true
		}
	}
	return false
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || (i > 0 && '0' <= r && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// irPrefix is the prefix of every function name in this package.
const irPrefix = "github.com/cnnc/cnnc/ir."

// callerPos returns the position of the first caller outside this package:
// the line of the user's model file that called the builder.
func callerPos() Pos {
	var pcs [16]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, irPrefix) {
			return Pos{File: f.File, Line: f.Line}
		}
		if !more {
			return Pos{}
		}
	}
}
