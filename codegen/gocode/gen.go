package gocode

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
	"github.com/dave/jennifer/jen"
)

// DefaultRuntime is the import path of the runtime that generated code
// links against.
const DefaultRuntime = "github.com/cnnc/cnnc/runtime"

// A Config says how to name and place the generated package.
type Config struct {
	// Package is the generated package's name, such as "lenet5".
	Package string
	// ImportPath is the generated package's import path, such as
	// "github.com/cnnc/cnnc/gen/lenet5"; cmd/train imports it.
	ImportPath string
	// Runtime is the import path of the runtime; DefaultRuntime if empty.
	Runtime string
	// Source names the model for the header comment, such as
	// "models/lenet5/model.go:LeNet5".
	Source string
	// CUDA says that the package also holds the CUDA target's files
	// (package codegen/cuda: model.cu and model_cuda_gen.go), so that
	// cmd/train passes NewCUDASeeded to the trainer for -device cuda.
	CUDA bool
	// Emitters replaces the kernel emitters of the ops it lists; the
	// others come from DefaultEmitters.
	Emitters map[ir.Op]Emitter
}

// Generate turns a training graph (from passes.Autodiff) and an inference
// graph (from passes.LowerInference) of the same model into the files of a
// Go package, keyed by path relative to the output directory:
// "model_gen.go", "kernels_gen.go" and "cmd/train/main.go". It renders every
// file before it returns, and returns either all of them or an error.
func Generate(train, infer *ir.Graph, cfg Config) (map[string][]byte, error) {
	if cfg.Runtime == "" {
		cfg.Runtime = DefaultRuntime
	}
	if cfg.Package == "" || ident(cfg.Package) != cfg.Package {
		return nil, fmt.Errorf("gocode: package name %q is not a Go identifier", cfg.Package)
	}
	if cfg.ImportPath == "" {
		return nil, fmt.Errorf("gocode: Config.ImportPath is empty; cmd/train needs the generated package's import path, such as \"example.com/gen/%s\"", cfg.Package)
	}
	if cfg.Source == "" {
		cfg.Source = cfg.Package
	}
	g := &generator{cfg: cfg, emitters: DefaultEmitters(), funcByBody: map[string]*kfunc{}, state: map[string]*stateVar{}}
	for op, e := range cfg.Emitters {
		g.emitters[op] = e
	}
	if err := g.build(train, infer); err != nil {
		return nil, fmt.Errorf("gocode: %w", err)
	}
	files := map[string]*jen.File{
		"model_gen.go":      g.modelFile(),
		"kernels_gen.go":    g.kernelsFile(),
		"cmd/train/main.go": g.mainFile(),
	}
	out := map[string][]byte{}
	for name, f := range files {
		var buf bytes.Buffer
		if err := f.Render(&buf); err != nil {
			return nil, fmt.Errorf("gocode: render %s: %w", name, err)
		}
		out[name] = buf.Bytes()
	}
	return out, nil
}

// A generator holds what Generate has worked out about both graphs.
type generator struct {
	cfg      Config
	emitters map[ir.Op]Emitter

	name       string // the model's name
	batch      int
	sampleSize int
	inputShape []int
	classes    int

	stateList  []*stateVar // params, then buffers
	state      map[string]*stateVar
	funcs      []*kfunc
	funcByBody map[string]*kfunc

	fields []string // Model fields: "name type // comment"
	news   []string // statements of NewSeeded after the parameters
	train  []string // body of TrainStep after the checks
	infer  []string // body of Predict after the checks
	loss   string   // expression of the loss
	logits string   // expression of Predict's logits buffer
	grads  *gradPlan
	// The weights that may lie as column panels, and the products that
	// compute their gradients (see panelWeights).
	panels     map[string]bool
	panelGrads map[*ir.Node]bool
}

// A stateVar is a parameter or buffer of the model.
type stateVar struct {
	name      string // state_dict name
	field     string // Model field
	shape     ir.Shape
	trainable bool
	init      ir.InitSpec
}

// A kfunc is one generated kernel function.
type kfunc struct {
	name   string
	params string
	body   string
	doc    string
}

// graphPlan is what the generator knows about one graph while it lays out
// its buffers and calls.
type graphPlan struct {
	g      *ir.Graph
	prefix string // "t" for training, "i" for inference
	ctx    *Context
	expr   map[*ir.Node]string // Go expression of each node's data
	typ    map[*ir.Node]string // element type of the data
	uses   [][]*ir.Node        // each node's users by ID, once handoff needs them
	// handoffs: the Model has this plan's field of handoffs.
	handoffs bool
}

func (g *generator) build(train, infer *ir.Graph) error {
	if train == nil || infer == nil {
		return fmt.Errorf("need both a training and an inference graph")
	}
	if train.Batch != infer.Batch {
		return fmt.Errorf("training graph has batch %d, inference graph %d", train.Batch, infer.Batch)
	}
	g.name, g.batch = train.Name, train.Batch
	in := train.Inputs()
	if len(in) != 1 {
		return fmt.Errorf("training graph has %d inputs, want 1", len(in))
	}
	if train.LabelsNode() == nil || train.Loss() == nil {
		return fmt.Errorf("training graph has no labels or no loss")
	}
	g.inputShape = in[0].Shape[1:]
	g.sampleSize = in[0].Shape.Size() / g.batch
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
	g.classes = logits.Shape[1]

	for _, n := range train.Params() {
		g.addState(n, true)
	}
	for _, n := range train.Buffers() {
		g.addState(n, false)
	}
	for _, n := range append(infer.Params(), infer.Buffers()...) {
		s := g.state[n.Attrs.Name]
		if s == nil || !s.shape.Equal(n.Shape) {
			return fmt.Errorf("inference graph's %s %q %v is not in the training graph", n.Op, n.Attrs.Name, n.Shape)
		}
	}

	g.panels, g.panelGrads = panelWeights(train, infer)
	tp, err := g.plan(train, "t")
	if err != nil {
		return fmt.Errorf("training graph: %w", err)
	}
	ip, err := g.plan(infer, "i")
	if err != nil {
		return fmt.Errorf("inference graph: %w", err)
	}
	g.loss = tp.expr[train.Loss()] + "[0]"
	g.logits = ip.expr[logits]
	return nil
}

func (g *generator) addState(n *ir.Node, trainable bool) {
	name := n.Attrs.Name
	s := &stateVar{name: name, field: "p" + exported(ident(name)), shape: n.Shape, trainable: trainable, init: n.Attrs.Init}
	g.state[name] = s
	g.stateList = append(g.stateList, s)
}

// plan lays out one graph: the expression for every node's data, the
// buffers to allocate, and the kernel calls in order.
func (g *generator) plan(gr *ir.Graph, prefix string) (*graphPlan, error) {
	batched, err := gr.Batched()
	if err != nil {
		return nil, err
	}
	p := &graphPlan{g: gr, prefix: prefix, ctx: &Context{Batch: gr.Batch, batched: batched, graph: gr, panels: g.panels, grads: g.panelGrads},
		expr: map[*ir.Node]string{}, typ: map[*ir.Node]string{}}
	steps := &g.train
	if prefix == "i" {
		steps = &g.infer
	}
	what := map[string]string{"t": "training", "i": "inference"}[prefix]

	// Every value a kernel computes lives in the graph's arena, at the
	// offset the memory plan gives it, except the gradients that
	// passes.GradTargets names: those are computed straight into the
	// parameter's Grad.
	var tail []string
	mem := passes.PlanMemory(gr)
	if err := mem.Check(gr); err != nil {
		return nil, fmt.Errorf("memory plan (a bug in cnnc): %w", err)
	}
	p.ctx.mem = mem
	var gp *gradPlan
	if prefix == "t" {
		gp = newGradPlan(g.stateList)
		g.grads = gp
	}
	grads := passes.GradTargets(gr)
	arena := prefix + "Arena"
	g.fields = append(g.fields, fmt.Sprintf("%s []float32 // %s graph: the arena of its values, %d floats (%d without sharing)", arena, what, mem.Size, mem.Unplanned))
	g.news = append(g.news, fmt.Sprintf("m.%s = make([]float32, %d)", arena, max(mem.Size, 1)))
	for _, o := range gr.Outputs {
		switch o.Kind {
		case ir.OutGrad:
			s := g.state[o.Name]
			if s == nil || !s.trainable {
				return nil, fmt.Errorf("output grad:%s names no parameter", o.Name)
			}
			if o.Node.Shape.Size() != s.shape.Size() || batched[o.Node] {
				return nil, fmt.Errorf("output grad:%s has shape %v, the parameter %v", o.Name, o.Node.Shape, s.shape)
			}
		case ir.OutUpdate:
			s := g.state[o.Name]
			if s == nil || s.trainable {
				return nil, fmt.Errorf("output update:%s names no buffer", o.Name)
			}
			if o.Node.Shape.Size() != s.shape.Size() {
				return nil, fmt.Errorf("output update:%s has shape %v, the buffer %v", o.Name, o.Node.Shape, s.shape)
			}
		}
	}
	for id, name := range grads {
		if name != "" {
			p.expr[gr.Nodes[id]] = "m." + g.state[name].field + ".Grad"
		}
	}

	for _, n := range gr.Nodes {
		p.typ[n] = "float32"
		if n.DType == ir.Int32 {
			p.typ[n] = "int32"
		}
		field := fmt.Sprintf("%s%d", prefix, n.ID)
		comment := describe(n)
		switch n.Op {
		case ir.OpInput:
			p.expr[n] = "m.x"
			continue
		case ir.OpLabels:
			if n.Attrs.Classes != 0 && n.Attrs.Classes != g.classes {
				return nil, fmt.Errorf("%v has %d classes, the logits %d", n, n.Attrs.Classes, g.classes)
			}
			p.expr[n] = "m.labels"
			continue
		case ir.OpParam, ir.OpBuffer:
			s := g.state[n.Attrs.Name]
			if s == nil {
				return nil, fmt.Errorf("%v: unknown %s %q", n, n.Op, n.Attrs.Name)
			}
			p.expr[n] = "m." + s.field + ".Data"
			continue
		case ir.OpConst:
			p.expr[n] = "m." + field
			g.fields = append(g.fields, fmt.Sprintf("%s []float32 // %s graph: %s", field, what, comment))
			g.news = append(g.news, fmt.Sprintf("m.%s = make([]float32, %d)", field, max(n.Shape.Size(), 1)))
			if n.Attrs.Value != 0 {
				g.news = append(g.news, fmt.Sprintf("for i := range m.%s {\nm.%s[i] = %s\n}", field, field, f32lit(n.Attrs.Value)))
			}
			continue
		case ir.OpReshape:
			p.expr[n] = p.expr[n.Args[0]]
			continue
		case ir.OpResult:
			continue // placed with its op
		}
		if n.Op.IsLeaf() {
			return nil, fmt.Errorf("%v: leaf op %s is not supported", n, n.Op)
		}
		e := g.emitters[n.Op]
		if e == nil {
			return nil, fmt.Errorf("%v: no kernel for op %s", n, n.Op)
		}
		k, err := e.Emit(n, p.ctx)
		if err != nil {
			return nil, err
		}
		// The node's value, and those of its results, which its kernel
		// writes too.
		for _, r := range gr.Results(n) {
			if r == nil {
				continue
			}
			if _, ok := p.expr[r]; ok {
				continue
			}
			off, size := mem.Offset[r.ID], r.Shape.Size()
			if off < 0 {
				return nil, fmt.Errorf("%v has no place in the memory plan (a bug in cnnc)", r)
			}
			rfield := fmt.Sprintf("%s%d", prefix, r.ID)
			where := fmt.Sprintf("%s[%d:%d]", arena, off, off+size)
			for i := range r.Args {
				if mem.InPlace(r, i) {
					where += fmt.Sprintf(", in place over %s%d", prefix, r.Args[i].ID)
					break
				}
			}
			p.expr[r] = "m." + rfield
			g.fields = append(g.fields, fmt.Sprintf("%s []float32 // %s graph: %s at %s", rfield, what, describe(r), where))
			g.news = append(g.news, fmt.Sprintf("m.%s = m.%s[%d:%d:%d]", rfield, arena, off, off+size, off+size))
		}
		start := len(*steps)
		if err := g.emitCalls(p, n, k, field, comment, steps); err != nil {
			return nil, err
		}
		if gp != nil {
			reads, writes := nodeExprs(p, n)
			gp.note(start, len(*steps), reads, writes)
		}
	}

	for _, o := range gr.Outputs {
		switch o.Kind {
		case ir.OutGrad:
			s := g.state[o.Name]
			if dst := "m." + s.field + ".Grad"; p.expr[o.Node] != dst {
				if gp != nil {
					at := len(*steps) + len(tail)
					gp.note(at, at+1, []string{p.expr[o.Node]}, []string{dst})
				}
				tail = append(tail, fmt.Sprintf("copy(%s, %s) // grad:%s", dst, p.expr[o.Node], o.Name))
			}
		case ir.OutUpdate:
			s := g.state[o.Name]
			tail = append(tail, fmt.Sprintf("copy(m.%s.Data, %s) // update:%s", s.field, p.expr[o.Node], o.Name))
		}
	}
	*steps = append(*steps, tail...)
	if gp != nil {
		gp.layout()
		*steps = gp.withHooks(*steps)
	}
	return p, nil
}

// describe names node n and its shape for comments: conv2d "conv1"
// [64,6,28,28].
func describe(n *ir.Node) string {
	if n.Op == ir.OpResult {
		p := n.Args[0]
		return fmt.Sprintf("%s of %s %v", ir.ResultWhat(p.Op, n.Attrs.Index), strings.TrimPrefix(p.String(), fmt.Sprintf("v%d ", p.ID)), n.Shape)
	}
	return fmt.Sprintf("%s %v", strings.TrimPrefix(n.String(), fmt.Sprintf("v%d ", n.ID)), n.Shape)
}

// emitCalls adds the kernel functions of node n (sharing identical ones),
// the closures New makes for the pool, and the calls in TrainStep or
// Predict.
func (g *generator) emitCalls(p *graphPlan, n *ir.Node, k *Kernel, field, comment string, steps *[]string) error {
	var params, args []string
	params = append(params, "n, lo, hi int")
	for _, a := range k.Args {
		if a.Index < 0 || a.Index >= len(n.Args) {
			return fmt.Errorf("%v: kernel reads argument %d of %d", n, a.Index, len(n.Args))
		}
		arg := n.Args[a.Index]
		params = append(params, fmt.Sprintf("%s []%s", a.Name, p.typ[arg]))
		args = append(args, p.expr[arg])
	}
	params = append(params, "y []float32")
	args = append(args, p.expr[n])
	results := p.g.Results(n)
	for _, r := range k.Results {
		if r.Index < 1 || r.Index >= len(results) {
			return fmt.Errorf("%v: kernel writes result %d of %d", n, r.Index, len(results))
		}
		params = append(params, r.Name+" []float32")
		if rn := results[r.Index]; rn != nil {
			args = append(args, p.expr[rn])
			continue
		}
		// A result the graph does not use still needs a place.
		name := field + exported(r.Name)
		args = append(args, "m."+name)
		g.fields = append(g.fields, fmt.Sprintf("%s []float32 // %s of %s, unused", name, ir.ResultWhat(n.Op, r.Index), field))
		g.news = append(g.news, fmt.Sprintf("m.%s = make([]float32, %d)", name, ir.ResultShapes(n)[r.Index].Size()))
	}
	for _, s := range k.Scratch {
		t := "float32"
		if s.Float64 {
			t = "float64"
		}
		name := field + exported(s.Name)
		params = append(params, fmt.Sprintf("%s []%s", s.Name, t))
		args = append(args, "m."+name)
		g.fields = append(g.fields, fmt.Sprintf("%s []%s // scratch of %s", name, t, field))
		g.news = append(g.news, fmt.Sprintf("m.%s = make([]%s, %d)", name, t, s.Size))
	}
	if k.Step {
		params = append(params, "seed, step uint64")
		args = append(args, fmt.Sprintf("%#x^m.runSeed, m.step", n.Attrs.Seed))
	}
	if k.Pool {
		params = append(params, "pool *runtime.Pool")
		args = append(args, "m.pool")
	}
	if k.RowCols > 0 {
		params = append(params, "rows *runtime.RowUpdate")
		args = append(args, rowsArg(p.expr[n], k.RowCols))
	}
	if k.Handoff {
		params = append(params, "from, to *gemm.Handoff")
		args = append(args, g.handoff(p, n.Args[0]), g.handoff(p, n))
	}
	sig := strings.Join(params, ", ")
	call := strings.Join(append([]string{"m.n", "lo", "hi"}, args...), ", ")
	base := ident(n.Op.String())
	if n.Layer != "" {
		base += exported(ident(n.Layer))
	}
	base += strings.ToUpper(p.prefix) + fmt.Sprint(n.ID)
	for _, ph := range k.Phases {
		key := sig + "\n" + ph.Body
		f := g.funcByBody[key]
		if f == nil {
			f = &kfunc{name: base + ph.Name, params: sig, body: ph.Body,
				doc: fmt.Sprintf("computes %s%s of %s.", phaseDoc(ph), comment, splitDoc(ph))}
			g.funcByBody[key] = f
			g.funcs = append(g.funcs, f)
		}
		switch ph.Split {
		case Serial:
			*steps = append(*steps, fmt.Sprintf("%s(%s) // %s", f.name, strings.Replace(call, "lo, hi", "0, 1", 1), comment))
		default:
			fn := field + ph.Name + "Fn"
			g.fields = append(g.fields, fmt.Sprintf("%s func(lo, hi int)", fn))
			g.news = append(g.news, fmt.Sprintf("m.%s = func(lo, hi int) { %s(%s) }", fn, f.name, call))
			count := "m.n"
			switch ph.Split {
			case PerIndex:
				count = fmt.Sprint(ph.Count)
			case PerSlot:
				count = fmt.Sprintf("min(m.n, %d)", ph.Count)
			}
			*steps = append(*steps, fmt.Sprintf("m.pool.For(%s, m.%s) // %s", count, fn, comment))
		}
	}
	return nil
}

// handoff returns the Go expression of the gemm.Handoff through which
// node v of p hands its output to the linear layers that read it, or
// "nil" where v is not a linear layer read by one (see Kernel.Handoff).
// A plan has two, which a chain of linear layers takes in turn, so that
// both stay in cache from one layer to the next where one for each layer
// would come from L3: in the MLP's step, one each made the forward
// products no faster than packing their inputs. A layer's consumers all
// run before the layer after next writes its handoff over, or else find
// that it holds another matrix and pack theirs (gemm.SgemmHandoff).
func (g *generator) handoff(p *graphPlan, v *ir.Node) string {
	if !linearOp(v.Op) {
		return "nil"
	}
	if p.uses == nil {
		p.uses = p.g.Uses()
	}
	if !slices.ContainsFunc(p.uses[v.ID], func(u *ir.Node) bool { return linearOp(u.Op) && u.Args[0] == v }) {
		return "nil"
	}
	name := p.prefix + "Handoffs"
	if !p.handoffs {
		p.handoffs = true
		g.fields = append(g.fields, fmt.Sprintf("%s [2]gemm.Handoff // linear layers' outputs packed for the next, in turn", name))
	}
	return fmt.Sprintf("&m.%s[%d]", name, handoffSlot(v))
}

// handoffSlot returns which of its plan's two handoffs linear layer v
// hands its output on through: the other one than the linear layer
// whose output it reads, if any.
func handoffSlot(v *ir.Node) int {
	if x := v.Args[0]; linearOp(x.Op) {
		return 1 - handoffSlot(x)
	}
	return 0
}

// linearOp reports whether op is a linear layer's forward product.
func linearOp(op ir.Op) bool {
	return op == ir.OpLinear || op == ir.OpLinearReLU || op == ir.OpLinearTanh
}

func phaseDoc(ph Phase) string {
	if ph.Name == "" {
		return ""
	}
	return "the " + strings.ToLower(ph.Name) + " phase of "
}

func splitDoc(ph Phase) string {
	switch ph.Split {
	case PerSample:
		return "samples [lo, hi)"
	case PerIndex:
		return fmt.Sprintf("indices [lo, hi) of %d", ph.Count)
	case PerSlot:
		return fmt.Sprintf("slots [lo, hi) of min(n, %d)", ph.Count)
	}
	return "the first n samples"
}

// header returns a file with the generated-code header.
func (g *generator) newFile(pkg string) *jen.File {
	f := jen.NewFile(pkg)
	f.HeaderComment(fmt.Sprintf("Code generated by cnnc from %s. DO NOT EDIT.", g.cfg.Source))
	return f
}

func (g *generator) kernelsFile() *jen.File {
	f := g.newFile(g.cfg.Package)
	for _, k := range g.funcs {
		f.Comment(k.name + " " + k.doc)
		f.Func().Id(k.name).Params(g.code(k.params)).Block(g.code(k.body))
		f.Line()
	}
	return f
}

func (g *generator) mainFile() *jen.File {
	f := g.newFile("main")
	f.PackageComment(fmt.Sprintf("Command train trains the %s model; runtime/trainer parses the flags\nand runs the training.", g.name))
	args := []jen.Code{jen.Qual(g.cfg.ImportPath, "NewSeeded")}
	if g.cfg.CUDA {
		args = append(args, jen.Qual(g.cfg.Runtime+"/trainer", "WithCUDA").Call(jen.Qual(g.cfg.ImportPath, "NewCUDASeeded")))
	}
	f.Func().Id("main").Params().Block(
		jen.Qual(g.cfg.Runtime+"/trainer", "Main").Call(args...),
	)
	return f
}

func intList(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, ", ")
}

func initLit(in ir.InitSpec) string {
	parts := []string{fmt.Sprintf("Scheme: %q", in.Scheme)}
	if in.Value != 0 {
		parts = append(parts, "Value: "+f64lit(in.Value))
	}
	if in.FanIn != 0 {
		parts = append(parts, fmt.Sprintf("FanIn: %d", in.FanIn))
	}
	if in.FanOut != 0 {
		parts = append(parts, fmt.Sprintf("FanOut: %d", in.FanOut))
	}
	if in.Mode != "" {
		parts = append(parts, fmt.Sprintf("Mode: %q", in.Mode))
	}
	return "runtime.Init{" + strings.Join(parts, ", ") + "}"
}

func (g *generator) modelFile() *jen.File {
	f := g.newFile(g.cfg.Package)
	f.PackageComment(fmt.Sprintf("Package %s is the model %q compiled by cnnc from %s.\n\n"+
		"New returns a model with freshly initialised parameters; TrainStep runs one\n"+
		"forward and backward pass and leaves the gradients in Params, for an\n"+
		"optimiser of package runtime to apply, or hands each to SetGradHook's\n"+
		"hook as soon as it is complete; Predict runs the inference graph.",
		g.cfg.Package, g.name, g.cfg.Source))
	var src strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&src, format, args...) }

	w("// Batch is the largest number of samples one call may pass.\nconst Batch = %d\n\n", g.batch)
	w("// Classes is the number of classes: the length of a row of logits.\nconst Classes = %d\n\n", g.classes)
	w("// SampleSize is the number of floats in one input sample.\nconst SampleSize = %d\n\n", g.sampleSize)
	w("// InputShape returns the shape of one input sample, without the batch.\nfunc InputShape() []int { return []int{%s} }\n\n", intList(g.inputShape))

	w(`// A Model holds the parameters, buffers and every intermediate value of
// the model, all allocated once by New. The values of each graph share one
// arena, laid out by cnnc's memory planner so that values whose lifetimes
// do not overlap share memory. TrainStep and Predict allocate nothing. A
// Model is not safe for concurrent use.
type Model struct {
pool *runtime.Pool
ownPool *runtime.Pool // made by SetThreads, closed when replaced
n int // samples in the current call
step uint64 // training steps taken: the dropout mask stream
runSeed uint64 // mixed into every dropout seed
x []float32 // the caller's input during a call
labels []int32 // the caller's labels during TrainStep
params []*runtime.Param
buffers []*runtime.Param
state []*runtime.Param
`)
	for _, s := range g.stateList {
		w("%s *runtime.Param // %s %v\n", s.field, s.name, s.shape)
	}
	for _, fl := range g.fields {
		w("%s\n", fl)
	}
	hookFields, hookMethods := g.grads.hookSource()
	w("%s}\n\n", hookFields)

	w("// New returns a model whose parameters are initialised as the model says,\n// from seed 1.\nfunc New() *Model { return NewSeeded(1) }\n\n")
	w(`// NewSeeded returns a model whose parameters are initialised from seed,
// which also seeds the dropout masks. It uses runtime.DefaultPool.
func NewSeeded(seed uint64) *Model {
m := &Model{pool: runtime.DefaultPool(), runSeed: seed}
`)
	var params, buffers []string
	for _, s := range g.stateList {
		w("m.%s = runtime.NewParam(%q, []int{%s}, %v)\n", s.field, s.name, intList(s.shape), s.trainable)
		if s.trainable {
			params = append(params, "m."+s.field)
		} else {
			buffers = append(buffers, "m."+s.field)
		}
	}
	w("m.params = []*runtime.Param{%s}\n", strings.Join(params, ", "))
	w("m.buffers = []*runtime.Param{%s}\n", strings.Join(buffers, ", "))
	w("m.state = append(append([]*runtime.Param{}, m.params...), m.buffers...)\n")
	w("rng := runtime.NewRNG(seed)\n")
	for _, s := range g.stateList {
		w("%s.Fill(m.%s.Data, rng)\n", initLit(s.init), s.field)
	}
	comment := "// The linear layers' weights lie as runtime/gemm reads them fastest.\n"
	for _, s := range g.stateList {
		if g.panels[s.name] {
			w("%sif gemm.WeightPanels(%d, %d) {\nm.%s.UsePanels()\n}\n", comment, s.shape[0], s.shape[1], s.field)
			comment = ""
		}
	}
	for _, st := range g.news {
		w("%s\n", st)
	}
	w("return m\n}\n\n")

	w(`// Params returns the trainable parameters in graph order, named as
// PyTorch's state_dict names them. TrainStep overwrites their Grad. A
// large linear layer's weight may lie as column panels, as runtime/gemm
// reads it fastest (runtime.Param.Panels): Logical gives it row-major.
func (m *Model) Params() []*runtime.Param { return m.params }

// Buffers returns the batch-norm running statistics and other stored
// tensors that are not trained by gradient; their Grad is nil.
func (m *Model) Buffers() []*runtime.Param { return m.buffers }

// State returns the parameters and then the buffers: what a checkpoint
// holds.
func (m *Model) State() []*runtime.Param { return m.state }

// Step returns the number of training steps taken, which selects the
// dropout masks.
func (m *Model) Step() uint64 { return m.step }

// SetStep sets the step counter, as when training resumes.
func (m *Model) SetStep(step uint64) { m.step = step }

// SetRunSeed sets the seed mixed into every dropout mask (the seed given
// to NewSeeded by default).
func (m *Model) SetRunSeed(seed uint64) { m.runSeed = seed }

// SetThreads makes the model run its kernels on a pool of its own with k
// workers instead of runtime.DefaultPool. Results do not depend on k.
func (m *Model) SetThreads(k int) {
if m.ownPool != nil {
m.ownPool.Close()
}
m.ownPool = runtime.NewPool(k)
m.pool = m.ownPool
}

// Info describes the model for the trainer.
func (m *Model) Info() runtime.ModelInfo {
return runtime.ModelInfo{Name: %q, Batch: Batch, InputShape: InputShape(), Classes: Classes}
}

// Save writes the parameters and buffers to a safetensors file.
func (m *Model) Save(path string) error {
return runtime.SaveTensors(path, m.state, map[string]string{"model": %q})
}

// Load reads the parameters and buffers from a safetensors file written by
// Save or by PyTorch.
func (m *Model) Load(path string) error { return runtime.LoadInto(path, m.state) }

`, g.name, g.name)
	w("%s", hookMethods)

	w(`// TrainStep runs the training graph on n = len(labels) <= Batch samples:
// x holds n*SampleSize floats. It writes the gradient of the loss into each
// parameter's Grad (overwriting it), updates the buffers (running
// statistics over the n samples), advances the step counter and returns
// the loss, the mean over the n samples.
func (m *Model) TrainStep(x []float32, labels []int32) float32 {
n := len(labels)
if n < 1 || n > Batch {
panic(fmt.Sprintf("%s: TrainStep with %%d labels, want 1 to %%d", n, Batch))
}
if len(x) != n*SampleSize {
panic(fmt.Sprintf("%s: TrainStep with %%d floats for %%d samples, want %%d", len(x), n, n*SampleSize))
}
for i, l := range labels {
if l < 0 || l >= Classes {
panic(fmt.Sprintf("%s: TrainStep: label %%d is %%d, want 0 to %%d", i, l, Classes-1))
}
}
m.n, m.x, m.labels = n, x, labels
`, g.name, g.name, g.name)
	for _, st := range g.train {
		w("%s\n", st)
	}
	w("loss := %s\nm.x, m.labels = nil, nil\nm.step++\nreturn loss\n}\n\n", g.loss)

	w(`// Predict runs the inference graph on n = len(x)/SampleSize <= Batch
// samples and returns their logits, n*Classes floats. The result is a view
// of a buffer of the model, valid until the next call of Predict.
func (m *Model) Predict(x []float32) []float32 {
n := len(x) / SampleSize
if n < 1 || n > Batch || len(x) != n*SampleSize {
panic(fmt.Sprintf("%s: Predict with %%d floats, want a multiple of %%d for 1 to %%d samples", len(x), SampleSize, Batch))
}
m.n, m.x = n, x
`, g.name)
	for _, st := range g.infer {
		w("%s\n", st)
	}
	w("m.x = nil\nreturn %s[:n*Classes]\n}\n", g.logits)

	f.Add(g.code(src.String()))
	return f
}
