package trainer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cnnc/cnnc/runtime"
)

// Names of what a checkpoint holds besides the model's state.
const (
	// meanTensor is the mean image subtracted from every input, [C, H, W].
	meanTensor = "cnnc.preprocess.mean"
	// preprocessKey is the metadata entry that says which preprocessing
	// the model was trained with: preprocessMean or preprocessNone.
	preprocessKey  = "cnnc.preprocess"
	preprocessMean = "mean"
	preprocessNone = "none"
	// Informational metadata.
	modelKey = "cnnc.model"
	epochKey = "cnnc.epoch"
)

// reservedPrefix marks tensors that are not model state.
const reservedPrefix = "cnnc."

// preprocess is the input transform of a model: subtract Mean from every
// image, or nothing when Mean is nil.
type preprocess struct {
	mean  []float32
	shape []int // of mean: [C, H, W]
}

// saveCheckpoint writes the model's state, the preprocessing and metadata
// to path, atomically.
func saveCheckpoint(path string, state []*runtime.Param, pre preprocess, model string, epoch int) error {
	tensors := slices.Clone(state)
	meta := map[string]string{
		preprocessKey: preprocessNone,
		modelKey:      model,
		epochKey:      strconv.Itoa(epoch),
	}
	if pre.mean != nil {
		meta[preprocessKey] = preprocessMean
		tensors = append(tensors, &runtime.Param{Name: meanTensor, Shape: pre.shape, Data: pre.mean})
	}
	if err := runtime.SaveTensors(path, tensors, meta); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// loadedCheckpoint is what loadCheckpoint found besides the state.
type loadedCheckpoint struct {
	pre      preprocess
	hasPre   bool   // the checkpoint says what preprocessing it needs
	model    string // name of the model that wrote it, if cnnc did
	epochStr string
}

// loadCheckpoint reads the checkpoint at path into state, matching tensors
// by name. Every tensor of state must be in the file with the same shape;
// tensors the model lacks are an error, except cnnc.* tensors and PyTorch's
// *.num_batches_tracked. On error no tensor of state is changed.
func loadCheckpoint(path string, state []*runtime.Param) (*loadedCheckpoint, error) {
	tensors, meta, err := runtime.LoadTensors(path)
	if err != nil {
		return nil, err
	}
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
			return nil, fmt.Errorf("load %s: tensor %q has dtype %s, want F32 or F64", path, p.Name, t.DType)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return nil, fmt.Errorf("load %s: tensor %q has shape %v in the checkpoint but %v in the model%s", path, p.Name, t.Shape, p.Shape, other)
		}
		if len(t.F32) != len(p.Data) {
			return nil, fmt.Errorf("load %s: model tensor %q holds %d values for shape %v, want %d", path, p.Name, len(p.Data), p.Shape, len(t.F32))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("load %s: the checkpoint lacks %s%s", path, quoteList(missing), other)
	}
	var extra []string
	for name := range tensors {
		if !want[name] && !strings.HasPrefix(name, reservedPrefix) && !strings.HasSuffix(name, ".num_batches_tracked") {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, fmt.Errorf("load %s: the checkpoint has %s that the model does not%s", path, quoteList(extra), other)
	}

	ck := &loadedCheckpoint{model: meta[modelKey], epochStr: meta[epochKey]}
	mean, hasMean := tensors[meanTensor]
	switch kind := meta[preprocessKey]; kind {
	case preprocessMean:
		if !hasMean {
			return nil, fmt.Errorf("load %s: the metadata says the inputs had the mean image subtracted, but tensor %q is missing; the checkpoint is corrupt", path, meanTensor)
		}
		fallthrough
	case "":
		if hasMean {
			if mean.F32 == nil {
				return nil, fmt.Errorf("load %s: tensor %q has dtype %s, want F32", path, meanTensor, mean.DType)
			}
			ck.pre = preprocess{mean: mean.F32, shape: mean.Shape}
			ck.hasPre = true
		}
	case preprocessNone:
		ck.hasPre = true
	default:
		return nil, fmt.Errorf("load %s: unknown preprocessing %q in the metadata; this trainer knows %q and %q", path, kind, preprocessMean, preprocessNone)
	}
	for _, p := range state {
		copy(p.Data, tensors[p.Name].F32)
	}
	return ck, nil
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
