package cuda

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/runtime"
	cudart "github.com/cnnc/cnnc/runtime/cuda"
)

// commonSource is the device library every model.cu starts with.
//
//go:embed common.cu
var commonSource string

// tf32Source is the tensor-core GEMM tile of Config.TF32.
//
//go:embed tf32.cu
var tf32Source string

// Prelude is prelude.h: the header that lets clang compile a model.cu to
// PTX without CUDA's headers (see the file).
//
//go:embed prelude.h
var Prelude string

// A Config says how to name the generated files.
type Config struct {
	// Package is the generated Go package's name, such as "lenet5".
	Package string
	// Source names the model for the header comments, such as
	// "models/lenet5/model.go:LeNet5".
	Source string
	// Prefix starts every kernel name; "cnnc_<model name>_" if empty.
	// Models compiled into one CUDA module need different prefixes.
	Prefix string
	// TF32 has the convolutions multiply on the tensor cores in TF32
	// (10-bit mantissas, sums in float32), as PyTorch's
	// cudnn.allow_tf32; the model then needs compute capability 8.0.
	TF32 bool
}

// A Program is a model compiled for the GPU: the CUDA source of its
// kernels and the plan that runs them.
type Program struct {
	Source string
	Plan   *cudart.Plan
}

// Generate turns a training graph (from passes.Train) and an inference
// graph (from passes.Infer) of the same model into the files of the CUDA
// part of a Go package, keyed by name: "model.cu" and "model_cuda_gen.go".
func Generate(train, infer *ir.Graph, cfg Config) (map[string][]byte, error) {
	if cfg.Package == "" || !isIdent(cfg.Package) {
		return nil, fmt.Errorf("cuda: package name %q is not a Go identifier", cfg.Package)
	}
	p, err := Build(train, infer, cfg)
	if err != nil {
		return nil, err
	}
	gofile, err := goFile(p, cfg)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return map[string][]byte{"model.cu": []byte(p.Source), "model_cuda_gen.go": gofile}, nil
}

// Build compiles the graphs into a Program without rendering the Go file.
func Build(train, infer *ir.Graph, cfg Config) (*Program, error) {
	if cfg.Source == "" {
		cfg.Source = cfg.Package
	}
	g := &generator{cfg: cfg, kernelByBody: map[string]string{}}
	if err := g.build(train, infer); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return &Program{Source: g.source(), Plan: g.plan}, nil
}

// A generator holds what Build has worked out about both graphs.
type generator struct {
	cfg    Config
	prefix string
	plan   *cudart.Plan
	words  int // the arena allocated so far

	state        map[string]int // parameter or buffer name -> offset
	kernels      strings.Builder
	kernelNames  []string
	kernelByBody map[string]string // signature and body -> kernel name, to share identical kernels
}

// graphPlan is what the generator knows about one graph while it emits it.
type graphPlan struct {
	g        *ir.Graph
	tag      string // "t" for training, "i" for inference
	batched  map[*ir.Node]bool
	buf      map[*ir.Node]int // offset of each node's value
	launches *[]cudart.Launch
	stats    map[*ir.Node][2]int // batch-norm input -> offsets of its mean and variance
	sums     map[[3]*ir.Node]int // (x, dy, ReLU output or nil) of a batch-norm backward -> offset of sum(dz), sum(dz*xhat)
	partials map[*ir.Node]int    // scratch for split reductions, per node
	extra    map[string]int      // other scratch, by key
}

const align = 64 // words: every buffer starts on a 256-byte boundary

// alloc reserves words in the arena and returns the offset.
func (g *generator) alloc(words int) int {
	off := g.words
	g.words += (max(words, 1) + align - 1) / align * align
	return off
}

func (g *generator) build(train, infer *ir.Graph) error {
	if train == nil || infer == nil {
		return fmt.Errorf("need both a training and an inference graph")
	}
	if train.Batch != infer.Batch {
		return fmt.Errorf("training graph has batch %d, inference graph %d", train.Batch, infer.Batch)
	}
	in := train.Inputs()
	if len(in) != 1 {
		return fmt.Errorf("training graph has %d inputs, want 1", len(in))
	}
	if train.LabelsNode() == nil || train.Loss() == nil {
		return fmt.Errorf("training graph has no labels or no loss")
	}
	iin := infer.Inputs()
	if len(iin) != 1 || !iin[0].Shape.Equal(in[0].Shape) {
		return fmt.Errorf("inference graph must have one input of shape %v", in[0].Shape)
	}
	if infer.LabelsNode() != nil {
		return fmt.Errorf("inference graph reads labels; lower it with passes.LowerInference")
	}
	logits := infer.Output(ir.OutValue, "logits")
	if logits == nil || len(logits.Shape) != 2 {
		return fmt.Errorf("inference graph has no value:logits output of shape [N, K]")
	}
	g.prefix = g.cfg.Prefix
	if g.prefix == "" {
		g.prefix = "cnnc_" + cIdent(train.Name) + "_"
	}
	g.plan = &cudart.Plan{
		Name:       train.Name,
		Batch:      train.Batch,
		InputShape: append([]int(nil), in[0].Shape[1:]...),
		Classes:    logits.Shape[1],
	}
	if g.cfg.TF32 {
		g.plan.Capability = 80 // mma.sync with TF32 operands
	}
	p := g.plan

	// Parameters first, contiguous; then their gradients and momentum in
	// the same layout; then the buffers.
	g.state = map[string]int{}
	params, buffers := train.Params(), train.Buffers()
	for _, n := range params {
		off := g.alloc(n.Shape.Size())
		g.state[n.Attrs.Name] = off
		p.State = append(p.State, cudart.Tensor{Name: n.Attrs.Name, Shape: append([]int(nil), n.Shape...), Offset: off, Trainable: true, Init: runtimeInit(n.Attrs.Init)})
	}
	p.ParamWords = g.words
	p.GradBase = g.alloc(p.ParamWords)
	p.VelocityBase = g.alloc(p.ParamWords)
	for _, n := range buffers {
		off := g.alloc(n.Shape.Size())
		g.state[n.Attrs.Name] = off
		p.State = append(p.State, cudart.Tensor{Name: n.Attrs.Name, Shape: append([]int(nil), n.Shape...), Offset: off, Init: runtimeInit(n.Attrs.Init)})
	}
	for _, n := range append(infer.Params(), infer.Buffers()...) {
		i := g.stateIndex(n.Attrs.Name)
		if i < 0 || !ir.Shape(p.State[i].Shape).Equal(n.Shape) {
			return fmt.Errorf("inference graph's %s %q %v is not in the training graph", n.Op, n.Attrs.Name, n.Shape)
		}
	}
	p.Input = g.alloc(in[0].Shape.Size())
	p.Labels = g.alloc(train.Batch)
	p.Step = g.alloc(2)

	tp, err := g.emitGraph(train, "t", &p.Train, nil)
	if err != nil {
		return fmt.Errorf("training graph: %w", err)
	}
	p.Loss = tp.buf[train.Loss()]
	ip, err := g.emitGraph(infer, "i", &p.Infer, &p.Prepare)
	if err != nil {
		return fmt.Errorf("inference graph: %w", err)
	}
	p.Logits = ip.buf[logits]
	p.Words = g.words
	if err := p.Validate(); err != nil {
		return fmt.Errorf("the plan is inconsistent (a bug in cnnc): %w", err)
	}
	return nil
}

func (g *generator) stateIndex(name string) int {
	for i, t := range g.plan.State {
		if t.Name == name {
			return i
		}
	}
	return -1
}

func runtimeInit(s ir.InitSpec) runtime.Init {
	return runtime.Init{Scheme: s.Scheme, Value: s.Value, FanIn: s.FanIn, FanOut: s.FanOut, Mode: s.Mode}
}

// emitGraph lays out one graph's values and emits its kernels and
// launches. With prepare, the launches of nodes that read only the state
// (parameters, buffers and constants) go there instead: their results,
// each in a buffer of its own, hold until the state changes.
func (g *generator) emitGraph(gr *ir.Graph, tag string, launches, prepare *[]cudart.Launch) (*graphPlan, error) {
	batched, err := gr.Batched()
	if err != nil {
		return nil, err
	}
	gp := &graphPlan{g: gr, tag: tag, batched: batched, buf: map[*ir.Node]int{}, launches: launches,
		stats: map[*ir.Node][2]int{}, sums: map[[3]*ir.Node]int{}, partials: map[*ir.Node]int{}, extra: map[string]int{}}
	p := g.plan
	stateOnlyMemo := map[*ir.Node]bool{}

	// A gradient is computed straight into the parameter's gradient when
	// the node is a kernel's output that no other output claimed.
	claimed := map[*ir.Node]bool{}
	for _, o := range gr.Outputs {
		switch o.Kind {
		case ir.OutGrad:
			i := g.stateIndex(o.Name)
			if i < 0 || !p.State[i].Trainable {
				return nil, fmt.Errorf("output grad:%s names no parameter", o.Name)
			}
			t := p.State[i]
			if !ir.Shape(t.Shape).Equal(o.Node.Shape) || batched[o.Node] {
				return nil, fmt.Errorf("output grad:%s has shape %v, the parameter %v", o.Name, o.Node.Shape, t.Shape)
			}
			if !o.Node.Op.IsLeaf() && o.Node.Op != ir.OpReshape && !claimed[o.Node] {
				claimed[o.Node] = true
				gp.buf[o.Node] = t.Offset - p.ParamBase + p.GradBase
			}
		case ir.OutUpdate:
			i := g.stateIndex(o.Name)
			if i < 0 || p.State[i].Trainable {
				return nil, fmt.Errorf("output update:%s names no buffer", o.Name)
			}
			if o.Node.Shape.Size() != p.State[i].Size() {
				return nil, fmt.Errorf("output update:%s has shape %v, the buffer %v", o.Name, o.Node.Shape, p.State[i].Shape)
			}
		}
	}

	for _, n := range gr.Nodes {
		switch n.Op {
		case ir.OpInput:
			gp.buf[n] = p.Input
			continue
		case ir.OpLabels:
			if n.Attrs.Classes != 0 && n.Attrs.Classes != p.Classes {
				return nil, fmt.Errorf("%v has %d classes, the logits %d", n, n.Attrs.Classes, p.Classes)
			}
			gp.buf[n] = p.Labels
			continue
		case ir.OpParam, ir.OpBuffer:
			off, ok := g.state[n.Attrs.Name]
			if !ok {
				return nil, fmt.Errorf("%v: unknown %s %q", n, n.Op, n.Attrs.Name)
			}
			gp.buf[n] = off
			continue
		case ir.OpConst:
			off := g.alloc(n.Shape.Size())
			gp.buf[n] = off
			if n.Attrs.Value != 0 {
				p.Fills = append(p.Fills, cudart.Fill{Offset: off, Count: max(n.Shape.Size(), 1), Value: float32(n.Attrs.Value)})
			}
			continue
		case ir.OpReshape:
			gp.buf[n] = gp.buf[n.Args[0]]
			continue
		case ir.OpResult:
			if _, ok := gp.buf[n]; !ok {
				return nil, fmt.Errorf("%v: its op's kernels did not write it (a bug in cnnc)", n)
			}
			continue
		}
		if n.Op.IsLeaf() {
			return nil, fmt.Errorf("%v: leaf op %s is not supported", n, n.Op)
		}
		if _, ok := gp.buf[n]; !ok {
			gp.buf[n] = g.alloc(n.Shape.Size())
		}
		gp.launches = launches
		if prepare != nil && stateOnly(n, stateOnlyMemo) {
			gp.launches = prepare
		}
		emit := emitters[n.Op]
		if emit == nil {
			return nil, fmt.Errorf("%v: no CUDA kernel for op %s", n, n.Op)
		}
		if err := emit(g, gp, n); err != nil {
			return nil, fmt.Errorf("%v: %w", n, err)
		}
	}

	gp.launches = launches

	// Gradients not computed in place, and buffer updates, are copied at
	// the end of the step, after every read of the old values.
	for _, o := range gr.Outputs {
		var dst int
		switch o.Kind {
		case ir.OutGrad:
			t := p.State[g.stateIndex(o.Name)]
			dst = t.Offset - p.ParamBase + p.GradBase
		case ir.OutUpdate:
			dst = g.state[o.Name]
		default:
			continue
		}
		if src := gp.buf[o.Node]; src != dst {
			g.copyLaunch(gp, dst, src, o.Node.Shape.Size(), fmt.Sprintf("%s:%s", o.Kind, o.Name))
		}
	}
	for _, o := range gr.Outputs {
		p.Outputs = append(p.Outputs, cudart.Output{Key: o.Kind.String() + ":" + o.Name, Infer: tag == "i",
			Offset: gp.buf[o.Node], Shape: append([]int{}, o.Node.Shape...), Batched: batched[o.Node]})
	}
	return gp, nil
}

// stateOnly reports whether n's value follows from parameters, buffers and
// constants alone, memoising in memo.
func stateOnly(n *ir.Node, memo map[*ir.Node]bool) bool {
	if v, ok := memo[n]; ok {
		return v
	}
	v := true
	switch {
	case n.Op == ir.OpParam || n.Op == ir.OpBuffer || n.Op == ir.OpConst:
	case n.Op.IsLeaf():
		v = false
	default:
		for _, a := range n.Args {
			if !stateOnly(a, memo) {
				v = false
				break
			}
		}
	}
	memo[n] = v
	return v
}

// copyLaunch adds a launch of cnnc_copy.
func (g *generator) copyLaunch(gp *graphPlan, dst, src, count int, what string) {
	*gp.launches = append(*gp.launches, cudart.Launch{
		Kernel: "cnnc_copy",
		Grid:   [3]cudart.Dim{{Fixed: count, Div: 256}, {Fixed: 1}, {Fixed: 1}},
		Block:  [3]int{256, 1, 1},
		Args:   []cudart.Arg{cudart.Ptr(dst), cudart.Ptr(src), cudart.Int(count)},
	})
	_ = what
}

// source returns model.cu.
func (g *generator) source() string {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by cnnc from %s. DO NOT EDIT.\n\n", g.cfg.Source)
	fmt.Fprintf(&b, "// Kernels of model %q for batches of up to %d samples: one per node of the\n", g.plan.Name, g.plan.Batch)
	b.WriteString("// training graph (prefix t) and of the inference graph (prefix i), shared\n")
	b.WriteString("// where identical. Every shape is a constant; n, the number of samples of\n")
	b.WriteString("// the call, is an argument. Each kernel's comment gives its launch.\n\n")
	b.WriteString(commonSource)
	b.WriteString("\n")
	if g.cfg.TF32 {
		b.WriteString(tf32Source)
		b.WriteString("\n")
	}
	b.WriteString(g.kernels.String())
	b.WriteString("#ifdef CNNC_EMU\n")
	for _, name := range g.kernelNames {
		fmt.Fprintf(&b, "CNNC_EMU_REGISTER(%s)\n", name)
	}
	b.WriteString("#endif\n")
	return b.String()
}

// A kparam is one parameter of a kernel: its C declaration and what the
// launch passes.
type kparam struct {
	decl string
	arg  cudart.Arg
}

func in(name string, off int) kparam {
	return kparam{"const float* __restrict__ " + name, cudart.Ptr(off)}
}

func inInt(name string, off int) kparam {
	return kparam{"const int* __restrict__ " + name, cudart.Ptr(off)}
}

func out(name string, off int) kparam {
	return kparam{"float* __restrict__ " + name, cudart.Ptr(off)}
}

var nParam = kparam{"int n", cudart.N}

// stepParam is the training step, read from the arena's step word, which
// the runtime writes before each training call, so that a captured CUDA
// graph of the step stays valid from one step to the next.
func (g *generator) stepParam() kparam {
	return kparam{"const unsigned long long* __restrict__ step", cudart.Ptr(g.plan.Step)}
}

func seedParam(seed uint64) kparam { return kparam{"unsigned long long seed", cudart.Seed(seed)} }

// kernel emits a kernel (or reuses an identical one) and adds its launch.
// doc describes it; pre is code before the kernel (helper structs) whose
// text may name the kernel as KNAME.
func (g *generator) kernel(gp *graphPlan, n *ir.Node, suffix, doc, pre string, grid [3]cudart.Dim, block int, params []kparam, body string) {
	decls := make([]string, len(params))
	args := make([]cudart.Arg, len(params))
	for i, p := range params {
		decls[i] = p.decl
		args[i] = p.arg
	}
	sig := strings.Join(decls, ", ")
	key := fmt.Sprintf("%d\n%s\n%s\n%s", block, sig, pre, body)
	name, ok := g.kernelByBody[key]
	if !ok {
		name = fmt.Sprintf("%s%s%d_%s%s", g.prefix, gp.tag, n.ID, cIdent(n.Op.String()), suffix)
		g.kernelByBody[key] = name
		g.kernelNames = append(g.kernelNames, name)
		w := &g.kernels
		fmt.Fprintf(w, "// %s: %s\n", name, doc)
		fmt.Fprintf(w, "// %s\n", describeNode(n))
		fmt.Fprintf(w, "// launch: grid %s, block %d\n", describeGrid(grid), block)
		if pre != "" {
			w.WriteString(strings.ReplaceAll(pre, "KNAME", name))
		}
		fmt.Fprintf(w, "extern \"C\" __global__ void __launch_bounds__(%d) %s(%s) {\n", block, name, sig)
		w.WriteString(indent(strings.ReplaceAll(body, "KNAME", name)))
		w.WriteString("}\n\n")
	}
	*gp.launches = append(*gp.launches, cudart.Launch{Kernel: name, Grid: grid, Block: [3]int{block, 1, 1}, Args: args})
}

func describeNode(n *ir.Node) string {
	var args []string
	for _, a := range n.Args {
		args = append(args, fmt.Sprintf("v%d %v", a.ID, a.Shape))
	}
	return fmt.Sprintf("%s %v <- %s", n, n.Shape, strings.Join(args, ", "))
}

func describeGrid(grid [3]cudart.Dim) string {
	parts := make([]string, 3)
	for i, d := range grid {
		parts[i] = describeDim(d)
	}
	return strings.Join(parts, " x ")
}

func describeDim(d cudart.Dim) string {
	var e string
	switch {
	case d.PerSample == 0:
		e = strconv.Itoa(d.Fixed)
	case d.Fixed == 0 && d.PerSample == 1:
		e = "n"
	case d.Fixed == 0:
		e = fmt.Sprintf("n*%d", d.PerSample)
	default:
		e = fmt.Sprintf("%d+n*%d", d.Fixed, d.PerSample)
	}
	if d.Div > 1 {
		if d.PerSample == 0 {
			return strconv.Itoa(d.Eval(0))
		}
		return fmt.Sprintf("ceil(%s/%d)", e, d.Div)
	}
	return e
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// cIdent turns a name such as "conv2d_backward_data" or "lenet-5" into a C
// identifier.
func cIdent(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	return cIdent(s) == s
}

// f32 formats v as a float literal of C.
func f32(v float64) string {
	s := strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s + "f"
}

// f64 formats v as a double literal of C.
func f64(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
