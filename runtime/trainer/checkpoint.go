package trainer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cnnc/cnnc/runtime"
	"github.com/cnnc/cnnc/runtime/data"
)

// Names of what a checkpoint holds besides the model's state.
const (
	// preprocessKey is the metadata entry that says which preprocessing
	// the model was trained with: "none", "pixel" or "channel" (older
	// checkpoints say "mean" for "pixel"). The statistics are the tensors
	// data.PreprocessMeanName and data.PreprocessStdName.
	preprocessKey  = "cnnc.preprocess"
	preprocessNone = "none"
	preprocessOld  = "mean"
	// Informational metadata.
	modelKey = "cnnc.model"
	epochKey = "cnnc.epoch" // epochs finished

	// What -resume needs, besides the tensors.
	argsKey     = "cnnc.run.args"     // JSON list of the run's flags
	stepKey     = "cnnc.run.step"     // batches trained, which seeds augmentation
	optStepsKey = "cnnc.optim.steps"  // runtime.SGD.Steps
	dropoutKey  = "cnnc.dropout.step" // the model's Step, when it has one
	scheduleKey = "cnnc.schedule"     // the schedule, informational
	lrKey       = "cnnc.lr"           // the learning rate of the next step, informational
	// deviceKey says "cuda" when the run trained on the GPU. Checkpoints
	// of GPU runs hold the optimiser's tensors as those of CPU runs do,
	// except those written before the trainer could copy them from the
	// GPU.
	deviceKey = "cnnc.device"

	// optimPrefix names the optimiser's tensors: "cnnc.optim." plus the
	// momentum buffer's name, "<param>.momentum_buffer".
	optimPrefix = "cnnc.optim."
)

// reservedPrefix marks tensors that are not model state.
const reservedPrefix = "cnnc."

// runState is where a run stands after an epoch: what a checkpoint holds
// for -resume besides the tensors.
type runState struct {
	args        []string // the flags that define the run
	epoch       int      // epochs finished
	step        uint64   // batches trained
	optSteps    int
	dropoutStep uint64
	hasDropout  bool   // the model has a dropout step counter
	device      string // "cuda" for a run on the GPU, "" on the CPU
	schedule    string
	nextLR      float64
}

// preprocessKind returns the metadata value of p: "none", "pixel" or
// "channel".
func preprocessKind(p *data.Preprocess) string {
	switch {
	case p == nil:
		return preprocessNone
	case p.PerChannel:
		return "channel"
	}
	return "pixel"
}

// describePreprocess says in words what p does to the inputs.
func describePreprocess(p *data.Preprocess) string {
	if p == nil {
		return "no preprocessing"
	}
	s := "mean image subtracted"
	if p.PerChannel {
		s = "channel means subtracted"
	}
	if p.Std != nil {
		s += ", divided by the standard deviation"
	}
	return s
}

// saveCheckpoint writes the model's state, the preprocessing (nil for
// none), the optimiser's momentum buffers (runtime.SGD.State, or the GPU's
// copy of them) and the run's position to path, atomically (a temporary
// file, synced and renamed). momentum and rs may be nil for a checkpoint
// of weights only.
func saveCheckpoint(path string, state []*runtime.Param, pre *data.Preprocess, momentum []*runtime.Param, rs *runState, model string) error {
	tensors := slices.Clone(state)
	meta := map[string]string{
		preprocessKey: preprocessKind(pre),
		modelKey:      model,
	}
	if pre != nil {
		tensors = append(tensors, pre.Params()...)
	}
	for _, v := range momentum {
		tensors = append(tensors, &runtime.Param{Name: optimPrefix + v.Name, Shape: v.Shape, Data: v.Data, Panels: v.Panels})
	}
	if rs != nil {
		args, _ := json.Marshal(rs.args) // a list of strings always marshals
		meta[argsKey] = string(args)
		meta[epochKey] = strconv.Itoa(rs.epoch)
		meta[stepKey] = strconv.FormatUint(rs.step, 10)
		meta[scheduleKey] = rs.schedule
		meta[lrKey] = strconv.FormatFloat(rs.nextLR, 'g', -1, 64)
		meta[optStepsKey] = strconv.Itoa(rs.optSteps)
		if rs.device != "" {
			meta[deviceKey] = rs.device
		}
		if rs.hasDropout {
			meta[dropoutKey] = strconv.FormatUint(rs.dropoutStep, 10)
		}
	}
	if err := runtime.SaveTensors(path, tensors, meta); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// loadedCheckpoint is what loadCheckpoint found besides the state.
type loadedCheckpoint struct {
	path     string
	pre      *data.Preprocess
	hasPre   bool   // the checkpoint says what preprocessing it needs
	model    string // name of the model that wrote it, if cnnc did
	epochStr string
	tensors  map[string]runtime.Tensor
	meta     map[string]string
}

// readCheckpoint reads the checkpoint at path without applying it.
func readCheckpoint(path string) (*loadedCheckpoint, error) {
	tensors, meta, err := runtime.LoadTensors(path)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return &loadedCheckpoint{path: path, model: meta[modelKey], epochStr: meta[epochKey], tensors: tensors, meta: meta}, nil
}

// loadCheckpoint reads the checkpoint at path into state, matching tensors
// by name, and its preprocessing for images of shape [c, h, w]. Every
// tensor of state must be in the file with the same shape; tensors the
// model lacks are an error, except cnnc.* tensors and PyTorch's
// *.num_batches_tracked. On error no tensor of state is changed.
func loadCheckpoint(path string, state []*runtime.Param, c, h, w int) (*loadedCheckpoint, error) {
	ck, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	return ck, ck.apply(state, c, h, w)
}

// apply checks the checkpoint against state and the image shape and copies
// it into state.
func (ck *loadedCheckpoint) apply(state []*runtime.Param, c, h, w int) error {
	path, tensors, meta := ck.path, ck.tensors, ck.meta
	const other = "; the checkpoint is probably for another model"
	var missing []string
	want := make(map[string]bool, len(state))
	for _, p := range state {
		want[p.Name] = true
		t, ok := tensors[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		if t.F32 == nil && len(t.I64) > 0 {
			return fmt.Errorf("load %s: tensor %q has dtype %s, want F32 or F64", path, p.Name, t.DType)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("load %s: tensor %q has shape %v in the checkpoint but %v in the model%s", path, p.Name, t.Shape, p.Shape, other)
		}
		if len(t.F32) != len(p.Data) {
			return fmt.Errorf("load %s: model tensor %q holds %d values for shape %v, want %d", path, p.Name, len(p.Data), p.Shape, len(t.F32))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("load %s: the checkpoint lacks %s%s", path, quoteList(missing), other)
	}
	var extra []string
	for name := range tensors {
		if !want[name] && !strings.HasPrefix(name, reservedPrefix) && !strings.HasSuffix(name, ".num_batches_tracked") {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("load %s: the checkpoint has %s that the model does not%s", path, quoteList(extra), other)
	}

	for _, name := range []string{data.PreprocessMeanName, data.PreprocessStdName} {
		if t, ok := tensors[name]; ok && t.F32 == nil {
			return fmt.Errorf("load %s: tensor %q has dtype %s, want F32", path, name, t.DType)
		}
	}
	pre, hasStats, err := data.PreprocessFromTensors(tensors, c, h, w)
	if err != nil {
		return fmt.Errorf("load %s: %w; the checkpoint is probably for another data set", path, err)
	}
	switch kind := meta[preprocessKey]; kind {
	case "pixel", "channel", preprocessOld:
		if !hasStats {
			return fmt.Errorf("load %s: the metadata says the inputs were normalised (%s), but tensor %q is missing; the checkpoint is corrupt", path, kind, data.PreprocessMeanName)
		}
		if pre.PerChannel != (kind == "channel") && kind != preprocessOld {
			return fmt.Errorf("load %s: the metadata says %s normalisation but tensor %q has shape %v; the checkpoint is corrupt", path, kind, data.PreprocessMeanName, tensors[data.PreprocessMeanName].Shape)
		}
		ck.pre, ck.hasPre = &pre, true
	case "":
		if hasStats {
			ck.pre, ck.hasPre = &pre, true
		}
	case preprocessNone:
		ck.hasPre = true
	default:
		return fmt.Errorf("load %s: unknown preprocessing %q in the metadata; this trainer knows none, pixel and channel", path, kind)
	}
	for _, p := range state {
		p.SetLogical(p.Data, tensors[p.Name].F32)
	}
	return nil
}

// runState reads what -resume needs from the checkpoint's metadata.
func (ck *loadedCheckpoint) runState() (*runState, error) {
	meta := ck.meta
	raw, ok := meta[argsKey]
	if !ok {
		return nil, fmt.Errorf("resume %s: the checkpoint does not say where its run stopped (no %q metadata); it holds weights only, which -load takes", ck.path, argsKey)
	}
	rs := &runState{}
	if err := json.Unmarshal([]byte(raw), &rs.args); err != nil {
		return nil, fmt.Errorf("resume %s: metadata %q is not a list of flags: %v; the checkpoint is corrupt", ck.path, argsKey, err)
	}
	num := func(key string, bits int) (uint64, error) {
		v, err := strconv.ParseUint(meta[key], 10, bits)
		if err != nil {
			return 0, fmt.Errorf("resume %s: metadata %q is %q, want a whole number; the checkpoint is corrupt", ck.path, key, meta[key])
		}
		return v, nil
	}
	epoch, err := num(epochKey, 31)
	if err != nil {
		return nil, err
	}
	rs.epoch = int(epoch)
	if rs.step, err = num(stepKey, 64); err != nil {
		return nil, err
	}
	steps, err := num(optStepsKey, 62)
	if err != nil {
		return nil, err
	}
	rs.optSteps = int(steps)
	if _, ok := meta[dropoutKey]; ok {
		if rs.dropoutStep, err = num(dropoutKey, 64); err != nil {
			return nil, err
		}
		rs.hasDropout = true
	}
	rs.schedule = meta[scheduleKey]
	return rs, nil
}

// restoreOptimizer restores the optimiser of a resumed run from the
// checkpoint: the momentum buffers and the step count of opt on the CPU,
// or of the model on the GPU (dev, with opt nil).
func restoreOptimizer(ck *loadedCheckpoint, opt *runtime.SGD, dev DeviceModel, momentum float64, steps int) error {
	if opt != nil {
		opt.Steps = steps
		return ck.restoreMomentum(opt.State(), momentum, steps)
	}
	buffers, err := deviceMomentum(dev, momentum)
	if err != nil {
		return err
	}
	if err := ck.restoreMomentum(buffers, momentum, steps); err != nil {
		return err
	}
	return dev.SetSGDState(steps)
}

// deviceMomentum copies the model's momentum buffers from the GPU, or
// returns nil without momentum, as runtime.SGD.State does.
func deviceMomentum(dev DeviceModel, momentum float64) ([]*runtime.Param, error) {
	if momentum == 0 {
		return nil, nil
	}
	buffers, _, err := dev.SGDState()
	return buffers, err
}

// restoreMomentum copies the checkpoint's momentum buffers into buffers,
// unless steps is 0, when the buffers count as empty.
func (ck *loadedCheckpoint) restoreMomentum(buffers []*runtime.Param, momentum float64, steps int) error {
	if steps == 0 {
		return nil
	}
	for _, v := range buffers {
		name := optimPrefix + v.Name
		t, ok := ck.tensors[name]
		if !ok && ck.meta[deviceKey] != "" {
			return fmt.Errorf("resume %s: the run trained with -device %s by a trainer that kept the SGD momentum on the GPU and not in the checkpoint; -resume needs it with -momentum %g: start from the checkpoint's weights with -load instead (a fresh optimiser)", ck.path, ck.meta[deviceKey], momentum)
		}
		if !ok {
			return fmt.Errorf("resume %s: the checkpoint lacks the optimiser's tensor %q; was the run trained without momentum?", ck.path, name)
		}
		if !slices.Equal(t.Shape, v.Shape) || len(t.F32) != len(v.Data) {
			return fmt.Errorf("resume %s: the optimiser's tensor %q has shape %v, want %v; the checkpoint is corrupt", ck.path, name, t.Shape, v.Shape)
		}
		v.SetLogical(v.Data, t.F32)
	}
	return nil
}

// quoteList returns `tensor "a"` or `tensors "a", "b" and "c"`, naming at
// most 10.
func quoteList(names []string) string {
	q := make([]string, 0, len(names))
	for i, n := range names {
		if i == 10 {
			q = append(q, fmt.Sprintf("%d more", len(names)-10))
			break
		}
		q = append(q, strconv.Quote(n))
	}
	if len(q) == 1 {
		return "tensor " + q[0]
	}
	return "tensors " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
