package trainer

import (
	"fmt"
	"io"
	"strings"

	"github.com/cnnc/cnnc/runtime"
	"github.com/cnnc/cnnc/runtime/augment"
	"github.com/cnnc/cnnc/runtime/data"
)

// Test-time augmentation and ensembles: the lecture's last points of
// accuracy. A scorer turns a model's logits into soft-max probabilities,
// averaged over an image and its mirror image with -tta flip; an ensemble
// adds its members' probabilities over the test set and classifies by the
// sum. Members are checkpoints: those named by -ensemble (a model
// ensemble), or those a run saved at the end of each period of a cosine
// schedule (-snapshots, a snapshot ensemble).

// A scorer scores batches of raw images for evaluation.
type scorer struct {
	predict        func(x []float32, n int) []float32 // logits; may normalise x in place
	classes        int
	c, h, w        int
	flip           bool
	mirror         []float32 // the batch's mirror images, with flip
	probs, mirrorP []float32
}

func newScorer(predict func(x []float32, n int) []float32, classes, batch, c, h, w int, flip bool) *scorer {
	s := &scorer{predict: predict, classes: classes, c: c, h: h, w: w, flip: flip, probs: make([]float32, batch*classes)}
	if flip {
		s.mirror = make([]float32, batch*c*h*w)
		s.mirrorP = make([]float32, batch*classes)
	}
	return s
}

// scores returns the class probabilities of the n images in x, rows of
// s.classes, in a buffer the next call reuses.
func (s *scorer) scores(x []float32, n int) []float32 {
	size := s.c * s.h * s.w
	if s.flip {
		// Mirror the raw images before predict normalises x.
		for i := range n {
			augment.FlipH(s.mirror[i*size:(i+1)*size], x[i*size:(i+1)*size], s.c, s.h, s.w)
		}
	}
	p := s.probs[:n*s.classes]
	runtime.Softmax(p, s.predict(x, n), n, s.classes)
	if s.flip {
		q := s.mirrorP[:n*s.classes]
		runtime.Softmax(q, s.predict(s.mirror, n), n, s.classes)
		for i := range p {
			p[i] = (p[i] + q[i]) / 2
		}
	}
	return p
}

// ensembleEval evaluates checkpoints together on a data set.
type ensembleEval struct {
	state   []*runtime.Param
	dev     DeviceModel // nil on the CPU
	c, h, w int
	// pre normalises the inputs of a checkpoint that does not say how
	// (nil: none).
	pre *data.Preprocess
	// scorerFor returns the scorer of the model as loaded, normalising
	// inputs with pre (nil: none).
	scorerFor func(pre *data.Preprocess) *scorer
	batch     int
}

// accuracy loads each checkpoint of paths into the model in turn and
// returns the fraction of ds that the sum of their probabilities
// classifies correctly. Each member normalises its inputs as its
// checkpoint says, or as e.pre if it does not say. The model keeps the
// last member's state.
func (e *ensembleEval) accuracy(paths []string, ds *data.Dataset) (float64, error) {
	sum := make([]float64, ds.N*ds.Classes)
	for _, path := range paths {
		ck, err := loadCheckpoint(path, e.state, e.c, e.h, e.w)
		if err != nil {
			return 0, err
		}
		if err := syncToDevice(e.dev); err != nil {
			return 0, err
		}
		pre := e.pre
		if ck.hasPre {
			pre = ck.pre
		}
		data.AddScores(e.scorerFor(pre).scores, ds, e.batch, sum)
	}
	if ds.N == 0 {
		return 0, nil
	}
	return float64(runtime.Accuracy(sum, ds.Labels, ds.Classes)) / float64(ds.N), nil
}

// snapshotPath returns where a run saving to save keeps the snapshot of
// the cosine period that ends after epoch epochs.
func snapshotPath(save string, epoch int) string {
	return fmt.Sprintf("%s.cycle%d.safetensors", strings.TrimSuffix(save, ".safetensors"), epoch)
}

// snapshotEpochs returns the epochs, at most epochs, after which a period
// of sched ends, the last k of them.
func snapshotEpochs(sched runtime.Schedule, epochs, k int) []int {
	var ends []int
	for e := 1; e <= epochs; e++ {
		if runtime.CycleEnd(sched, e) {
			ends = append(ends, e)
		}
	}
	return ends[max(0, len(ends)-k):]
}

// snapshotEnsemble evaluates the snapshots of the last k periods of a run
// that saved to save, reporting to out. It runs after the last epoch, and
// leaves the model with the last snapshot's state.
func snapshotEnsemble(e *ensembleEval, save string, sched runtime.Schedule, epochs, k int, test *data.Dataset, out io.Writer) (float64, error) {
	ends := snapshotEpochs(sched, epochs, k)
	paths := make([]string, len(ends))
	for i, ep := range ends {
		paths[i] = snapshotPath(save, ep)
	}
	acc, err := e.accuracy(paths, test)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "snapshot ensemble of the models after epochs %s: test accuracy %.2f%% (%d images)\n", intList(ends), 100*acc, test.N)
	return acc, nil
}

func intList(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
