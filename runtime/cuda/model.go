package cuda

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"unsafe"

	cnnc "github.com/cnnc/cnnc/runtime"
)

// A Model is a compiled model on a GPU: the arena holding its parameters,
// gradients, momentum, buffers and every intermediate value, and the
// kernels of its plan. Parameters live on the device; Params, Buffers and
// State copy them to host tensors on demand, and Load and SyncToDevice copy
// host values back. A Model is not safe for concurrent use.
//
// A model launches its kernels on a stream of its own. A call with a full
// batch replays a CUDA graph of its launches, captured by the first such
// call (one graph for training, one for inference), which saves the cost of
// launching every kernel; other calls launch the kernels one by one. See
// [Model.Graphs].
type Model struct {
	plan   *Plan
	dev    *Device
	mod    *Module
	arena  DevicePtr
	stream *Stream

	train, infer []boundLaunch
	// prepare holds the launches of the inference graph that read only
	// the state; prepared says that their results hold for the state on
	// the device, which Train, SGDStep and SyncToDevice change.
	prepare  []boundLaunch
	prepared bool
	sgd      *Function
	pin      runtime.Pinner // keeps the launches' argument blocks in place

	// graphs says whether full batches replay graphs; trainExec and
	// inferExec are the instantiated graphs (CUgraphExec), 0 until
	// captured; recapture says that the captured arguments are stale.
	graphs               bool
	trainExec, inferExec uintptr
	recapture            bool

	// staging is page-locked host memory for a full batch of input,
	// through which Train and Infer copy it; nil if the driver has none.
	staging []float32

	params, buffers, state []*cnnc.Param
	velocity               []*cnnc.Param // host copies of the momentum buffers, one per parameter
	logits                 []float32
	n                      int    // samples in the last call
	step                   uint64 // training steps taken: the dropout mask stream
	runSeed                uint64 // mixed into every dropout seed
	sgdSteps               int    // SGD updates taken; the first one starts the momentum
}

// A boundLaunch is a Launch with its kernel resolved and its arguments laid
// out for cuLaunchKernel: vals holds each argument in 8 bytes and ptrs
// points at them.
type boundLaunch struct {
	l    *Launch
	fn   *Function
	vals []uint64
	ptrs []unsafe.Pointer
	n    []int // indices of the ArgN arguments
}

// NewModel compiles source (CUDA C made by codegen/cuda with plan) for
// dev, allocates the arena and initialises the parameters and buffers
// from seed exactly as the Go target's NewSeeded(seed) does: the same
// initialisers drawing from one runtime.RNG in the plan's State order.
// seed also seeds the dropout masks. Full batches replay CUDA graphs
// unless the environment variable CNNC_CUDA_GRAPHS is 0.
func NewModel(dev *Device, source string, plan *Plan, seed uint64) (*Model, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if major, minor := dev.ComputeCapability(); 10*major+minor < plan.Capability {
		return nil, fmt.Errorf("model %s needs a GPU of compute capability %d.%d or later (it was compiled with TF32 tensor-core convolutions, cnnc compile -cuda-tf32); %s is %d.%d: compile it without -cuda-tf32",
			plan.Name, plan.Capability/10, plan.Capability%10, dev.Name(), major, minor)
	}
	mod, err := dev.Compile(source, plan.Name+".cu")
	if err != nil {
		return nil, fmt.Errorf("compile model %s: %w", plan.Name, err)
	}
	m := &Model{plan: plan, dev: dev, mod: mod, runSeed: seed}
	fail := func(err error) (*Model, error) {
		m.Close()
		return nil, fmt.Errorf("model %s: %w", plan.Name, err)
	}
	fns := map[string]*Function{}
	bind := func(seq []Launch) ([]boundLaunch, error) {
		out := make([]boundLaunch, len(seq))
		for i := range seq {
			l := &seq[i]
			fn := fns[l.Kernel]
			if fn == nil {
				if fn, err = mod.Function(l.Kernel); err != nil {
					return nil, err
				}
				fns[l.Kernel] = fn
			}
			out[i] = boundLaunch{l: l, fn: fn}
		}
		return out, nil
	}
	if m.train, err = bind(plan.Train); err != nil {
		return fail(err)
	}
	if m.infer, err = bind(plan.Infer); err != nil {
		return fail(err)
	}
	if m.prepare, err = bind(plan.Prepare); err != nil {
		return fail(err)
	}
	if m.sgd, err = mod.Function(SGDKernel); err != nil {
		return fail(err)
	}
	if m.arena, err = dev.Alloc(int64(plan.Words) * 4); err != nil {
		return fail(err)
	}
	if err := dev.Memset32(m.arena, 0, plan.Words); err != nil {
		return fail(err)
	}
	if m.stream, err = dev.NewStream(); err != nil {
		return fail(err)
	}
	m.graphs = dev.drv.hasGraphs() && os.Getenv("CNNC_CUDA_GRAPHS") != "0"
	if unbind, err := dev.bind(); err == nil {
		m.staging = dev.allocHost(plan.Batch * m.sampleSize())
		unbind()
	}
	for _, seq := range [][]boundLaunch{m.train, m.infer, m.prepare} {
		for i := range seq {
			m.layOut(&seq[i])
		}
	}

	// Parameters and buffers, initialised on the host as the Go target
	// does, then uploaded.
	rng := cnnc.NewRNG(seed)
	for i := range plan.State {
		t := &plan.State[i]
		p := cnnc.NewParam(t.Name, t.Shape, t.Trainable)
		t.Init.Fill(p.Data, rng)
		if t.Trainable {
			m.params = append(m.params, p)
			m.velocity = append(m.velocity, cnnc.NewParam(t.Name+".momentum_buffer", t.Shape, false))
		} else {
			m.buffers = append(m.buffers, p)
		}
	}
	m.state = append(append([]*cnnc.Param{}, m.params...), m.buffers...)
	if err := m.SyncToDevice(); err != nil {
		return fail(err)
	}
	for _, f := range plan.Fills {
		if err := dev.Memset32(m.word(f.Offset), math.Float32bits(f.Value), f.Count); err != nil {
			return fail(err)
		}
	}
	m.logits = make([]float32, plan.Batch*plan.Classes)
	return m, nil
}

// layOut lays out a launch's arguments and pins them for the model's
// life.
func (m *Model) layOut(b *boundLaunch) {
	b.vals = make([]uint64, max(len(b.l.Args), 1))
	b.ptrs = make([]unsafe.Pointer, len(b.vals))
	for i, a := range b.l.Args {
		switch a.Kind {
		case ArgPtr:
			b.vals[i] = uint64(m.word(int(a.Value)))
		case ArgN:
			b.n = append(b.n, i)
		case ArgSeed:
			b.vals[i] = a.Value ^ m.runSeed
		case ArgInt:
			b.vals[i] = uint64(uint32(int32(a.Value)))
		}
	}
	m.pin.Pin(&b.vals[0])
	for i := range b.vals {
		b.ptrs[i] = unsafe.Pointer(&b.vals[i])
	}
	m.pin.Pin(&b.ptrs[0])
}

// word returns the device address of the word at offset.
func (m *Model) word(offset int) DevicePtr { return m.arena + DevicePtr(4*offset) }

// Plan returns the model's plan.
func (m *Model) Plan() *Plan { return m.plan }

// Device returns the model's device.
func (m *Model) Device() *Device { return m.dev }

// Module returns the model's compiled module.
func (m *Model) Module() *Module { return m.mod }

// Info describes the model for the trainer.
func (m *Model) Info() cnnc.ModelInfo {
	return cnnc.ModelInfo{Name: m.plan.Name, Batch: m.plan.Batch, InputShape: append([]int(nil), m.plan.InputShape...), Classes: m.plan.Classes}
}

// StepCount returns the number of training steps taken, which selects the
// dropout masks.
func (m *Model) StepCount() uint64 { return m.step }

// SetStep sets the step counter, as when training resumes.
func (m *Model) SetStep(step uint64) { m.step = step }

// SetRunSeed sets the seed mixed into every dropout mask (the seed given
// to NewModel by default).
func (m *Model) SetRunSeed(seed uint64) {
	m.runSeed = seed
	m.recapture = true // the graphs hold the old seeds
	for _, seq := range [][]boundLaunch{m.train, m.infer, m.prepare} {
		for i := range seq {
			for j, a := range seq[i].l.Args {
				if a.Kind == ArgSeed {
					seq[i].vals[j] = a.Value ^ seed
				}
			}
		}
	}
}

func (m *Model) sampleSize() int {
	s := 1
	for _, d := range m.plan.InputShape {
		s *= d
	}
	return s
}

// Train runs the training graph on n = len(labels) samples, x holding
// n*SampleSize floats: it leaves the gradient of the loss in the device
// gradients (which Params copies out), updates the buffers, advances the
// step counter and returns the loss, the mean over the n samples.
func (m *Model) Train(x []float32, labels []int32) (float32, error) {
	p := m.plan
	n := len(labels)
	if n < 1 || n > p.Batch {
		return 0, fmt.Errorf("model %s: TrainStep with %d labels, want 1 to %d", p.Name, n, p.Batch)
	}
	if len(x) != n*m.sampleSize() {
		return 0, fmt.Errorf("model %s: TrainStep with %d floats for %d samples, want %d", p.Name, len(x), n, n*m.sampleSize())
	}
	for i, l := range labels {
		if l < 0 || int(l) >= p.Classes {
			return 0, fmt.Errorf("model %s: TrainStep: label %d is %d, want 0 to %d", p.Name, i, l, p.Classes-1)
		}
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return 0, err
	}
	defer unbind()
	if err := m.upload(x); err != nil {
		return 0, err
	}
	if err := m.dev.copyIn(m.word(p.Labels), unsafe.Pointer(&labels[0]), 4*n); err != nil {
		return 0, err
	}
	if err := m.dev.copyIn(m.word(p.Step), unsafe.Pointer(&m.step), 8); err != nil {
		return 0, err
	}
	m.n = n
	m.prepared = false // the step moves the buffers, such as running statistics
	if err := m.run(m.train, n, &m.trainExec); err != nil {
		return 0, err
	}
	var loss [1]float32
	if err := m.dev.copyOut(unsafe.Pointer(&loss[0]), m.word(p.Loss), 4); err != nil {
		return 0, fmt.Errorf("model %s: training step: %w", p.Name, err)
	}
	m.step++
	return loss[0], nil
}

// Staging returns the page-locked host buffer, room for a full batch of
// input, through which Train and Infer copy their input to the device (nil
// if the driver could not allocate one). A caller that writes a batch into
// it and passes that prefix of it saves the copy in: the device reads it
// from there directly. It belongs to the model until Close.
func (m *Model) Staging() []float32 { return m.staging }

// upload copies the input x to the device through the staging buffer, on
// a bound thread: the device reads page-locked memory directly, where a
// copy from Go's memory goes through a small buffer of the driver's, a
// part at a time.
func (m *Model) upload(x []float32) error {
	src := x
	if m.staging != nil {
		src = m.staging[:len(x)]
		switch {
		case &src[0] == &x[0]:
		case inside(x, m.staging):
			copy(src, x) // overlapping: one memmove
		default:
			parallelCopy(src, x)
		}
	}
	return m.dev.copyIn(m.word(m.plan.Input), unsafe.Pointer(&src[0]), 4*len(src))
}

// inside reports whether x starts within s.
func inside(x, s []float32) bool {
	p, lo := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&s[0]))
	return p >= lo && p < lo+4*uintptr(len(s))
}

// parallelCopy copies src to dst, a large copy in parts on several
// goroutines.
func parallelCopy(dst, src []float32) {
	const part = 1 << 17 // floats
	parts := min(runtime.GOMAXPROCS(0), len(src)/part, 8)
	if parts < 2 {
		copy(dst, src)
		return
	}
	var wg sync.WaitGroup
	size := (len(src) + parts - 1) / parts
	for lo := 0; lo < len(src); lo += size {
		hi := min(lo+size, len(src))
		wg.Go(func() { copy(dst[lo:hi], src[lo:hi]) })
	}
	wg.Wait()
}

// Infer runs the inference graph on n = len(x)/SampleSize samples and
// returns their logits, n*Classes floats, in a buffer that the next call
// reuses.
func (m *Model) Infer(x []float32) ([]float32, error) {
	p := m.plan
	s := m.sampleSize()
	n := len(x) / s
	if n < 1 || n > p.Batch || len(x) != n*s {
		return nil, fmt.Errorf("model %s: Predict with %d floats, want a multiple of %d for 1 to %d samples", p.Name, len(x), s, p.Batch)
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	if err := m.upload(x); err != nil {
		return nil, err
	}
	m.n = n
	if !m.prepared {
		if err := m.launch(m.prepare, n); err != nil {
			return nil, err
		}
		m.prepared = true
	}
	if err := m.run(m.infer, n, &m.inferExec); err != nil {
		return nil, err
	}
	out := m.logits[:n*p.Classes]
	if err := m.dev.copyOut(unsafe.Pointer(&out[0]), m.word(p.Logits), 4*len(out)); err != nil {
		return nil, fmt.Errorf("model %s: inference: %w", p.Name, err)
	}
	return out, nil
}

// run runs seq for n samples on a bound thread. A full batch replays the
// graph *exec, which the first full batch captures; other calls, and every
// call once graphs are off, launch the kernels one by one.
func (m *Model) run(seq []boundLaunch, n int, exec *uintptr) error {
	if m.recapture {
		m.recapture = false
		if err := m.destroyGraphs(); err != nil {
			return fmt.Errorf("model %s: %w", m.plan.Name, err)
		}
	}
	if !m.graphs || n != m.plan.Batch {
		return m.launch(seq, n)
	}
	if *exec == 0 {
		e, ok := m.capture(seq, n)
		if !ok {
			// The driver cannot capture this sequence: launch directly
			// from now on.
			m.graphs = false
			if err := m.destroyGraphs(); err != nil {
				return fmt.Errorf("model %s: %w", m.plan.Name, err)
			}
			return m.launch(seq, n)
		}
		*exec = e
	}
	drv := m.dev.drv
	if err := drv.call("cuGraphLaunch", drv.cuGraphLaunch, *exec, m.stream.handle); err != nil {
		return fmt.Errorf("model %s: %w", m.plan.Name, err)
	}
	return nil
}

// capture records the launches of seq for n samples on the model's stream
// as a graph and instantiates it. It reports false, with the stream out of
// capture, if the driver refuses any step. The graph holds the arguments'
// values as they were at capture; the step counter is read from the arena.
func (m *Model) capture(seq []boundLaunch, n int) (exec uintptr, ok bool) {
	drv := m.dev.drv
	s := m.stream.handle
	if raw(drv.cuStreamBeginCapture, s, streamCaptureThreadLocal) != cudaSuccess {
		return 0, false
	}
	launchErr := m.launch(seq, n)
	var g uintptr
	if raw(drv.cuStreamEndCapture, s, uintptr(unsafe.Pointer(&g))) != cudaSuccess || launchErr != nil {
		if g != 0 {
			raw(drv.cuGraphDestroy, g)
		}
		return 0, false
	}
	code := raw(drv.cuGraphInstantiateWithFlags, uintptr(unsafe.Pointer(&exec)), g, 0)
	raw(drv.cuGraphDestroy, g)
	return exec, code == cudaSuccess
}

// destroyGraphs destroys the instantiated graphs on a bound thread, so
// that the next full batches capture afresh.
func (m *Model) destroyGraphs() error {
	var first error
	for _, e := range []*uintptr{&m.trainExec, &m.inferExec} {
		if *e == 0 {
			continue
		}
		if err := m.dev.drv.call("cuGraphExecDestroy", m.dev.drv.cuGraphExecDestroy, *e); err != nil && first == nil {
			first = err
		}
		*e = 0
	}
	return first
}

// Graphs reports whether calls with a full batch replay CUDA graphs. It is
// false when the environment variable CNNC_CUDA_GRAPHS is 0, when the
// driver lacks graphs (before CUDA 11.4), and after a capture failed; the
// model then launches every kernel of every call itself.
func (m *Model) Graphs() bool { return m.graphs }

// launch launches the kernels of seq for n samples one by one on the
// model's stream, on a bound thread.
func (m *Model) launch(seq []boundLaunch, n int) error {
	for i := range seq {
		if err := m.launchOne(&seq[i], n); err != nil {
			return err
		}
	}
	return nil
}

// launchOne launches b for n samples on the model's stream, on a bound
// thread.
func (m *Model) launchOne(b *boundLaunch, n int) error {
	for _, j := range b.n {
		b.vals[j] = uint64(uint32(n))
	}
	grid, block := b.dims(n)
	drv := m.dev.drv
	if code := raw(drv.cuLaunchKernel, b.fn.handle,
		uintptr(grid.X), uintptr(grid.Y), uintptr(grid.Z),
		uintptr(block.X), uintptr(block.Y), uintptr(block.Z),
		0, m.stream.handle, uintptr(unsafe.Pointer(&b.ptrs[0])), 0); code != cudaSuccess {
		return fmt.Errorf("model %s: %w", m.plan.Name, drv.errorFor(b.fn.launchDesc(grid, block), code))
	}
	return nil
}

// dims returns b's grid and block for n samples.
func (b *boundLaunch) dims(n int) (grid, block Dim3) {
	l := b.l
	return Dim3{l.Grid[0].Eval(n), l.Grid[1].Eval(n), l.Grid[2].Eval(n)}, Dim3{l.Block[0], l.Block[1], l.Block[2]}
}

// A KernelTime is what one launch of a call costs, as Profile measures it.
type KernelTime struct {
	Kernel      string
	Grid, Block Dim3
	Millis      float64 // the mean over the repetitions
	Regs        int     // registers a thread
	LocalBytes  int     // local memory a thread: registers spilled, arrays not kept in registers
}

// Profile times each launch of a training step (train) or of an inference
// call for n samples (its Prepare launches first) on its own: reps
// launches of it between two events, after the whole call has run once.
// The parameters are not changed (the
// SGD update is not part of a call), but the gradients, the buffers (such
// as batch-norm's running statistics) and the intermediate values are left
// as the repeated kernels leave them.
func (m *Model) Profile(train bool, n, reps int) ([]KernelTime, error) {
	seq := append(append([]boundLaunch{}, m.prepare...), m.infer...)
	if train {
		seq = m.train
		m.prepared = false
	}
	if n < 1 || n > m.plan.Batch || reps < 1 {
		return nil, fmt.Errorf("model %s: Profile for %d samples, %d times: want 1 to %d samples, at least once", m.plan.Name, n, reps, m.plan.Batch)
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()
	if err := m.launch(seq, n); err != nil {
		return nil, err
	}
	start, err := m.dev.NewEvent()
	if err != nil {
		return nil, err
	}
	defer start.Destroy()
	end, err := m.dev.NewEvent()
	if err != nil {
		return nil, err
	}
	defer end.Destroy()
	out := make([]KernelTime, len(seq))
	for i := range seq {
		b := &seq[i]
		if err := start.Record(); err != nil {
			return nil, err
		}
		for range reps {
			if err := m.launchOne(b, n); err != nil {
				return nil, err
			}
		}
		if err := end.Record(); err != nil {
			return nil, err
		}
		ms, err := start.Elapsed(end)
		if err != nil {
			return nil, err
		}
		grid, block := b.dims(n)
		out[i] = KernelTime{Kernel: b.l.Kernel, Grid: grid, Block: block, Millis: float64(ms) / float64(reps)}
		if out[i].Regs, err = b.fn.Attribute(FuncNumRegs); err != nil {
			return nil, err
		}
		if out[i].LocalBytes, err = b.fn.Attribute(FuncLocalBytes); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SGDStep updates every parameter from its gradient on the device, with
// exactly runtime.SGD's update (PyTorch's torch.optim.SGD with dampening
// 0): weight decay, then momentum (the first step after NewModel or
// ResetSGD starts the momentum buffers at the gradient), then Nesterov's
// correction if asked, in float32 with one rounding per operation.
func (m *Model) SGDStep(lr, momentum float64, nesterov bool, weightDecay float64) error {
	p := m.plan
	if p.ParamWords == 0 {
		return nil
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	first := int32(0)
	if m.sgdSteps == 0 {
		first = 1
	}
	nest := int32(0)
	if nesterov {
		nest = 1
	}
	const block = 256
	grid := min((p.ParamWords+block-1)/block, 4096)
	vals := []uint64{
		uint64(m.word(p.ParamBase)), uint64(m.word(p.GradBase)), uint64(m.word(p.VelocityBase)),
		uint64(uint32(p.ParamWords)),
		uint64(math.Float32bits(float32(lr))), uint64(math.Float32bits(float32(momentum))),
		uint64(math.Float32bits(float32(weightDecay))),
		uint64(uint32(nest)), uint64(uint32(first)),
	}
	if err := m.sgd.launch(Dim3{grid, 1, 1}, Dim3{block, 1, 1}, 0, m.stream.handle, vals); err != nil {
		return fmt.Errorf("model %s: SGD step: %w", p.Name, err)
	}
	m.sgdSteps++
	m.prepared = false
	return nil
}

// ResetSGD makes the next SGDStep start the momentum buffers afresh.
func (m *Model) ResetSGD() { m.sgdSteps = 0 }

// SGDState copies the momentum buffers from the device and returns them,
// one per trainable parameter in graph order, named
// "<param>.momentum_buffer" as runtime.SGD.State names them, with the
// number of SGD steps taken since NewModel or ResetSGD: while it is 0 the
// buffers count as empty. Changes to the returned Data reach the device
// only through SetSGDState.
func (m *Model) SGDState() ([]*cnnc.Param, int, error) {
	unbind, err := m.dev.bind()
	if err != nil {
		return nil, 0, err
	}
	defer unbind()
	for i, t := range m.trainable() {
		if err := m.copyOut(m.velocity[i].Data, t.Offset-m.plan.ParamBase+m.plan.VelocityBase); err != nil {
			return nil, 0, err
		}
	}
	return m.velocity, m.sgdSteps, nil
}

// SetSGDState copies the host values of the momentum buffers (the Data of
// the tensors SGDState returns) to the device and sets the number of SGD
// steps taken, as when training resumes from a checkpoint.
func (m *Model) SetSGDState(steps int) error {
	if steps < 0 {
		return fmt.Errorf("model %s: SetSGDState(%d): the number of steps must not be negative", m.plan.Name, steps)
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	for i, t := range m.trainable() {
		d := m.velocity[i].Data
		if len(d) == 0 {
			continue
		}
		if err := m.dev.copyIn(m.word(t.Offset-m.plan.ParamBase+m.plan.VelocityBase), unsafe.Pointer(&d[0]), 4*len(d)); err != nil {
			return fmt.Errorf("model %s: upload %s: %w", m.plan.Name, m.velocity[i].Name, err)
		}
	}
	m.sgdSteps = steps
	return nil
}

// trainable returns the plan's trainable tensors, in order.
func (m *Model) trainable() []*Tensor {
	var ts []*Tensor
	for i := range m.plan.State {
		if m.plan.State[i].Trainable {
			ts = append(ts, &m.plan.State[i])
		}
	}
	return ts
}

// Params copies the trainable parameters and their gradients from the
// device and returns them, in graph order, named as PyTorch's state_dict
// names them. Changes to the returned Data reach the device only through
// SyncToDevice.
func (m *Model) Params() ([]*cnnc.Param, error) {
	return m.params, m.download(true)
}

// Buffers copies the buffers (batch-norm running statistics) from the
// device and returns them.
func (m *Model) Buffers() ([]*cnnc.Param, error) {
	return m.buffers, m.download(false)
}

// State copies the parameters and then the buffers from the device and
// returns them: what a checkpoint holds.
func (m *Model) State() ([]*cnnc.Param, error) {
	return m.state, m.download(true)
}

// download copies the buffers, and the parameters with their gradients if
// params is set, into the host tensors.
func (m *Model) download(params bool) error {
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	pi, bi := 0, 0
	for i := range m.plan.State {
		t := &m.plan.State[i]
		var p *cnnc.Param
		if t.Trainable {
			p = m.params[pi]
			pi++
			if !params {
				continue
			}
			if err := m.copyOut(p.Grad, t.Offset-m.plan.ParamBase+m.plan.GradBase); err != nil {
				return err
			}
		} else {
			p = m.buffers[bi]
			bi++
		}
		if err := m.copyOut(p.Data, t.Offset); err != nil {
			return err
		}
	}
	return nil
}

func (m *Model) copyOut(dst []float32, offset int) error {
	if len(dst) == 0 {
		return nil
	}
	if err := m.dev.copyOut(unsafe.Pointer(&dst[0]), m.word(offset), 4*len(dst)); err != nil {
		return fmt.Errorf("model %s: %w", m.plan.Name, err)
	}
	return nil
}

// SyncToDevice copies the host values of every parameter and buffer (the
// Data of the tensors State returns) to the device.
func (m *Model) SyncToDevice() error {
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	m.prepared = false
	for i, t := range m.plan.State {
		d := m.state[m.stateIndex(i)].Data
		if len(d) == 0 {
			continue
		}
		if err := m.dev.copyIn(m.word(t.Offset), unsafe.Pointer(&d[0]), 4*len(d)); err != nil {
			return fmt.Errorf("model %s: upload %s: %w", m.plan.Name, t.Name, err)
		}
	}
	return nil
}

// stateIndex maps an index of plan.State to the index in m.state, which
// lists the parameters before the buffers.
func (m *Model) stateIndex(i int) int {
	pi, bi := 0, 0
	for j := 0; j < i; j++ {
		if m.plan.State[j].Trainable {
			pi++
		} else {
			bi++
		}
	}
	if m.plan.State[i].Trainable {
		return pi
	}
	return len(m.params) + bi
}

// Save writes the parameters and buffers to a safetensors file.
func (m *Model) Save(path string) error {
	state, err := m.State()
	if err != nil {
		return err
	}
	return cnnc.SaveTensors(path, state, map[string]string{"model": m.plan.Name})
}

// Load reads the parameters and buffers from a safetensors file written by
// Save or by PyTorch, and copies them to the device.
func (m *Model) Load(path string) error {
	if _, err := m.State(); err != nil {
		return err
	}
	if err := cnnc.LoadInto(path, m.state); err != nil {
		return err
	}
	return m.SyncToDevice()
}

// Read returns a copy of an output of the last call (see [Output]): for a
// batched value, the rows of the call's samples.
func (m *Model) Read(key string) ([]float32, error) {
	for _, o := range m.plan.Outputs {
		if o.Key != key {
			continue
		}
		size := 1
		for _, d := range o.Shape {
			size *= d
		}
		if o.Batched {
			size = size / o.Shape[0] * max(m.n, 1)
		}
		out := make([]float32, size)
		unbind, err := m.dev.bind()
		if err != nil {
			return nil, err
		}
		defer unbind()
		return out, m.copyOut(out, o.Offset)
	}
	return nil, fmt.Errorf("model %s has no output %q", m.plan.Name, key)
}

// Synchronize waits for the model's queued work.
func (m *Model) Synchronize() error { return m.dev.Synchronize() }

// Close destroys the model's graphs and stream, frees the arena and
// unloads the module. The model must not be used afterwards.
func (m *Model) Close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if m.trainExec != 0 || m.inferExec != 0 {
		if unbind, err := m.dev.bind(); err != nil {
			keep(err)
		} else {
			keep(m.destroyGraphs())
			unbind()
		}
	}
	if m.stream != nil {
		keep(m.stream.Destroy())
		m.stream = nil
	}
	if m.staging != nil {
		if unbind, err := m.dev.bind(); err != nil {
			keep(err)
		} else {
			keep(m.dev.freeHost(m.staging))
			unbind()
		}
		m.staging = nil
	}
	if m.arena != 0 {
		keep(m.dev.Free(m.arena))
		m.arena = 0
	}
	if m.mod != nil {
		keep(m.mod.Unload())
		m.mod = nil
	}
	m.pin.Unpin()
	return first
}
