package trainer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/runtime"
	"github.com/cnnc/cnnc/runtime/data"
)

// linear is a hand-written softmax regression on 28x28 images, a stand-in
// for a generated model: logits = W x + b, cross-entropy loss.
type linear struct {
	w, b    *runtime.Param
	batch   int
	shape   []int // InputShape that Info reports
	logits  []float32
	dlogits []float32
}

const (
	linPixels  = 28 * 28
	linClasses = 10
	linBatch   = 96 // not a divisor of 1000 or 6000: last batches are partial
)

func newLinear(seed uint64) *linear { return newLinearBatch(seed, linBatch) }

func newLinearBatch(seed uint64, batch int) *linear {
	m := &linear{
		w:       runtime.NewParam("fc.weight", []int{linClasses, linPixels}, true),
		b:       runtime.NewParam("fc.bias", []int{linClasses}, true),
		batch:   batch,
		shape:   []int{1, 28, 28},
		logits:  make([]float32, batch*linClasses),
		dlogits: make([]float32, batch*linClasses),
	}
	rng := runtime.NewRNG(seed)
	bound := 1 / math.Sqrt(linPixels)
	for _, p := range []*runtime.Param{m.w, m.b} {
		for i := range p.Data {
			p.Data[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	return m
}

func (m *linear) forward(x []float32) []float32 {
	n := len(x) / linPixels
	if len(x) != n*linPixels || n > m.batch {
		panic("linear: bad input size")
	}
	out := m.logits[:n*linClasses]
	for i := range n {
		xi := x[i*linPixels : (i+1)*linPixels]
		for c := range linClasses {
			s := m.b.Data[c]
			for j, v := range m.w.Data[c*linPixels : (c+1)*linPixels] {
				s += v * xi[j]
			}
			out[i*linClasses+c] = s
		}
	}
	return out
}

func (m *linear) TrainStep(x []float32, labels []int32) float32 {
	n := len(labels)
	if len(x) != n*linPixels {
		panic("linear: inputs and labels disagree")
	}
	logits := m.forward(x)
	d := m.dlogits[:n*linClasses]
	var loss float64
	for i := range n {
		row := logits[i*linClasses : (i+1)*linClasses]
		mx := slices.Max(row)
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - mx))
		}
		for c, v := range row {
			p := math.Exp(float64(v-mx)) / sum
			if int32(c) == labels[i] {
				loss -= math.Log(p)
				p--
			}
			d[i*linClasses+c] = float32(p / float64(n))
		}
	}
	clear(m.w.Grad)
	clear(m.b.Grad)
	for i := range n {
		xi := x[i*linPixels : (i+1)*linPixels]
		for c := range linClasses {
			g := d[i*linClasses+c]
			m.b.Grad[c] += g
			gw := m.w.Grad[c*linPixels : (c+1)*linPixels]
			for j, v := range xi {
				gw[j] += g * v
			}
		}
	}
	return float32(loss / float64(n))
}

func (m *linear) Predict(x []float32) []float32 { return m.forward(x) }
func (m *linear) Params() []*runtime.Param      { return []*runtime.Param{m.w, m.b} }
func (m *linear) Buffers() []*runtime.Param     { return nil }
func (m *linear) State() []*runtime.Param       { return m.Params() }
func (m *linear) Load(path string) error        { return runtime.LoadInto(path, m.State()) }
func (m *linear) Save(path string) error        { return runtime.SaveTensors(path, m.State(), nil) }
func (m *linear) Info() runtime.ModelInfo {
	return runtime.ModelInfo{Name: "linear", Batch: m.batch, InputShape: m.shape, Classes: linClasses}
}

var (
	embeddedOnce      sync.Once
	embTrain, embTest *data.Dataset
	embErr            error
	_                 Model = (*linear)(nil)
)

// testEnv serves copies of the embedded Fashion-MNIST subset when no -data
// is given, whatever is installed, and loads the rest as Main does.
var testEnv = env{loadData: func(d dataSpec) (*data.Dataset, *data.Dataset, string, error) {
	if d.kind != "fashion" || d.dir != "" {
		return loadData(d)
	}
	embeddedOnce.Do(func() { embTrain, embTest, embErr = data.FashionMNISTEmbedded() })
	if embErr != nil {
		return nil, nil, "", embErr
	}
	return clone(embTrain), clone(embTest), "embedded subset", nil
}}

func clone(d *data.Dataset) *data.Dataset {
	c := *d
	c.Images = slices.Clone(d.Images)
	c.Labels = slices.Clone(d.Labels)
	return &c
}

// runLinear runs the trainer on the linear model; the checkpoint goes to the
// test's temporary directory unless args say otherwise.
func runLinear(t *testing.T, args ...string) (*result, string, error) {
	t.Helper()
	var out bytes.Buffer
	args = append([]string{"-save", ""}, args...)
	res, err := run(func(seed uint64) Model { return newLinear(seed) }, args, &out, testEnv)
	return res, out.String(), err
}

func TestOneEpoch(t *testing.T) {
	res, out, err := runLinear(t, "-epochs", "1")
	require.NoError(t, err)
	require.Len(t, res.epochs, 1)
	e := res.epochs[0]
	require.Greater(t, e.TestAcc, 0.6, "test accuracy after one epoch; chance is 0.1")
	require.Greater(t, e.TrainAcc, 0.6, "train accuracy after one epoch")
	require.Equal(t, 1000, res.testImages)
	require.Equal(t, defaultLR, e.LR)
	require.Contains(t, out, "data: embedded subset: 6000 training and 1000 test images")
	require.Contains(t, out, "epoch 1/1  loss ")
	require.Contains(t, out, "final test accuracy ")
	require.Contains(t, out, "(1000 images) after 1 epoch, ")
	require.Contains(t, out, " img/s\n")
	require.NotContains(t, out, "\r", "no status line when the output is not a terminal")
}

func TestMetricsAndSchedule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	res, _, err := runLinear(t, "-epochs", "3", "-lr-steps", "2", "-lr", "0.02", "-metrics", path)
	require.NoError(t, err)

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		lines = append(lines, m)
	}
	require.NoError(t, sc.Err())
	require.Len(t, lines, 3)
	for i, m := range lines {
		for _, k := range []string{"epoch", "loss", "train_acc", "test_acc", "lr", "images_per_sec", "seconds"} {
			require.Contains(t, m, k, "line %d", i+1)
		}
		require.Equal(t, float64(i+1), m["epoch"])
		require.Equal(t, res.epochs[i].Loss, m["loss"])
		require.Equal(t, res.epochs[i].TestAcc, m["test_acc"])
		require.Greater(t, m["images_per_sec"], 0.0)
	}
	// -lr-steps counts epochs from 1: epoch 1 at -lr, epochs 2 and 3 at a tenth.
	require.Equal(t, []float64{0.02, 0.002, 0.002}, []float64{res.epochs[0].LR, res.epochs[1].LR, res.epochs[2].LR})
	require.Less(t, res.epochs[2].Loss, res.epochs[0].Loss, "loss must decrease")
	require.Less(t, res.epochs[1].Loss, res.epochs[0].Loss, "loss must decrease")
}

func TestDeterminism(t *testing.T) {
	run := func(seed string) []epochMetrics {
		res, _, err := runLinear(t, "-epochs", "2", "-seed", seed, "-limit", "2000")
		require.NoError(t, err)
		for i := range res.epochs { // timings differ between runs
			res.epochs[i].ImagesPerSec, res.epochs[i].Seconds, res.epochs[i].TrainSeconds = 0, 0, 0
		}
		return res.epochs
	}
	a, b, c := run("7"), run("7"), run("8")
	require.Equal(t, a, b, "two runs with the same seed")
	require.NotEqual(t, a[0].Loss, c[0].Loss, "runs with different seeds")
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		trainArgs []string
		evalArgs  []string
		mean      bool
	}{
		{name: "mean", mean: true},
		{name: "mean, evaluated with -mean=false", evalArgs: []string{"-mean=false"}, mean: true},
		{name: "no mean", trainArgs: []string{"-mean=false"}},
		{name: "no mean, evaluated with -mean", trainArgs: []string{"-mean=false"}, evalArgs: []string{"-mean=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			trained, _, err := runLinear(t, append([]string{"-epochs", "1", "-limit", "3000", "-save", ck}, tc.trainArgs...)...)
			require.NoError(t, err)

			tensors, meta, err := runtime.LoadTensors(ck)
			require.NoError(t, err)
			require.Contains(t, tensors, "fc.weight")
			require.Equal(t, "linear", meta[modelKey])
			require.Equal(t, "1", meta[epochKey])
			if tc.mean {
				require.Equal(t, "pixel", meta[preprocessKey])
				require.Equal(t, []int{1, 28, 28}, tensors[data.PreprocessMeanName].Shape)
			} else {
				require.Equal(t, preprocessNone, meta[preprocessKey])
				require.NotContains(t, tensors, data.PreprocessMeanName)
			}

			evaluated, out, err := runLinear(t, append([]string{"-eval-only", "-load", ck, "-limit", "3000"}, tc.evalArgs...)...)
			require.NoError(t, err)
			require.Equal(t, trained.testAcc, evaluated.testAcc, "test accuracy of the loaded checkpoint")
			require.Contains(t, out, "test accuracy ")
			require.Contains(t, out, "loaded checkpoint "+ck+` (model "linear", epoch 1)`)
			if len(tc.evalArgs) > 0 {
				require.Contains(t, out, "ignored: the checkpoint's model was trained")
			}

			// Training on from the checkpoint starts where it ended.
			more, _, err := runLinear(t, "-load", ck, "-epochs", "1", "-lr", "0.001", "-limit", "3000")
			require.NoError(t, err)
			require.Greater(t, more.testAcc, 0.6)
		})
	}
}

func TestDefaultSavePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out bytes.Buffer
	_, err := run(func(seed uint64) Model { return newLinear(seed) }, []string{"-epochs", "1", "-limit", "500", "-quiet"}, &out, testEnv)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "linear.safetensors"))
	require.NoError(t, err, "default checkpoint")
	require.True(t, strings.HasPrefix(out.String(), "final test accuracy "), "-quiet prints only the final line, got %q", out.String())
	require.Equal(t, 1, strings.Count(out.String(), "\n"), "-quiet prints only the final line, got %q", out.String())
}

func TestBatchDefaultsToCompiledBatch(t *testing.T) {
	var out bytes.Buffer
	_, err := run(func(seed uint64) Model { return newLinearBatch(seed, 32) }, []string{"-save", "", "-epochs", "1", "-limit", "500"}, &out, testEnv)
	require.NoError(t, err)
	require.Contains(t, out.String(), "batch 32 (compiled for 32)")
}

func TestInputShape(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		want  string // error; "" for none
	}{
		{shape: []int{1, 28, 28}},
		{shape: []int{784}},
		{shape: []int{3, 32, 32}, want: `model "linear" takes inputs of shape [3 32 32] but the images of fashion-mnist subset train are [1 28 28]`},
		{shape: []int{28, 28, 1}, want: "takes inputs of shape [28 28 1]"},
		{shape: []int{1000}, want: "takes inputs of shape [1000]"},
	} {
		t.Run(fmt.Sprint(tc.shape), func(t *testing.T) {
			newModel := func(seed uint64) Model {
				m := newLinear(seed)
				m.shape = tc.shape
				return m
			}
			var out bytes.Buffer
			_, err := run(newModel, []string{"-save", "", "-epochs", "1", "-limit", "200"}, &out, testEnv)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, Run(newLinear, []string{"-h"}, &out))
	for _, f := range []string{"-data", "-epochs", "-batch", "-lr", "-lr-steps", "-save", "-eval-only", "-metrics", "-threads",
		"-dataset", "-val", "-schedule", "-warmup", "-l1", "-elastic", "-init", "-preprocess", "-std", "-augment", "-resume", "-metrics-csv"} {
		require.Regexp(t, `\n  `+f+`[ \n]`, out.String())
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	require.NoError(t, os.WriteFile(corrupt, []byte("this is not a checkpoint at all"), 0o644))
	truncated := filepath.Join(dir, "truncated.safetensors")
	good := filepath.Join(dir, "good.safetensors")
	require.NoError(t, newLinear(1).Save(good))
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(truncated, b[:len(b)-100], 0o644))
	save := func(name string, params ...*runtime.Param) string {
		p := filepath.Join(dir, name)
		require.NoError(t, runtime.SaveTensors(p, params, nil))
		return p
	}
	m := newLinear(1)
	otherShape := save("shape.safetensors", m.w, runtime.NewParam("fc.bias", []int{20}, true))
	missing := save("missing.safetensors", m.w)
	extra := save("extra.safetensors", m.w, m.b, runtime.NewParam("conv1.weight", []int{6, 1, 5, 5}, true))
	badMean := filepath.Join(dir, "badmean.safetensors")
	require.NoError(t, saveCheckpoint(badMean, m.State(), &data.Preprocess{Mean: make([]float32, 3*32*32), C: 3, H: 32, W: 32}, nil, nil, "linear"))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-batch", "0"}, "-batch 0: the batch size must be at least 1"},
		{[]string{"-batch", "97"}, "-batch 97: model \"linear\" was compiled for batches of at most 96"},
		{[]string{"-epochs", "0"}, "-epochs 0: train for at least 1 epoch"},
		{[]string{"-lr", "-0.1"}, "-lr -0.1: the learning rate must be a positive number"},
		{[]string{"-lr", "0"}, "the learning rate must be a positive number"},
		{[]string{"-lr", "NaN"}, "the learning rate must be a positive number"},
		{[]string{"-momentum", "1"}, "-momentum 1: momentum must be in [0, 1)"},
		{[]string{"-nesterov", "-momentum", "0"}, "-nesterov needs a momentum above 0"},
		{[]string{"-wd", "-1"}, "-wd -1: weight decay must be 0 or positive"},
		{[]string{"-lr-steps", "x"}, `-lr-steps "x": "x" is not an epoch number`},
		{[]string{"-lr-steps", "3,0"}, `"0" is not an epoch number`},
		{[]string{"-lr-gamma", "0"}, "-lr-gamma 0: the learning-rate factor must be a positive number"},
		{[]string{"-threads", "-2"}, "-threads -2: give a positive number of threads"},
		{[]string{"-limit", "-1"}, "-limit -1"},
		{[]string{"-eval-only"}, "-eval-only needs a checkpoint to evaluate: add -load PATH"},
		{[]string{"-epochs", "x"}, `invalid value "x" for flag -epochs`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus (run with -h"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-data", filepath.Join(dir, "nowhere")}, "no such file or directory"},
		{[]string{"-data", dir}, "has no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"},
		{[]string{"-load", filepath.Join(dir, "nowhere.safetensors")}, "no such file or directory"},
		{[]string{"-load", corrupt}, "not a safetensors file"},
		{[]string{"-load", truncated}, "truncated"},
		{[]string{"-load", otherShape}, `tensor "fc.bias" has shape [20] in the checkpoint but [10] in the model; the checkpoint is probably for another model`},
		{[]string{"-load", missing}, `the checkpoint lacks tensor "fc.bias"; the checkpoint is probably for another model`},
		{[]string{"-load", extra}, `the checkpoint has tensor "conv1.weight" that the model does not; the checkpoint is probably for another model`},
		{[]string{"-load", badMean}, `cnnc.preprocess.mean has shape [3 32 32], want [1 1 1] (per channel) or [1 28 28] (per pixel)`},
		{[]string{"-lr", "1e30", "-momentum", "0"}, "training diverged, try a smaller -lr"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := runLinear(t, append([]string{"-epochs", "1", "-limit", "300"}, tc.args...)...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// hookedLinear is linear with a gradient hook, called at the end of
// TrainStep for the bias and then the weight, as a generated model calls
// it when the backward pass is done with each.
type hookedLinear struct {
	*linear
	hook  func(p *runtime.Param)
	calls int
}

func (m *hookedLinear) SetGradHook(h func(p *runtime.Param)) { m.hook = h }

func (m *hookedLinear) TrainStep(x []float32, labels []int32) float32 {
	loss := m.linear.TrainStep(x, labels)
	if m.hook != nil {
		m.hook(m.b)
		m.hook(m.w)
		m.calls++
	}
	return loss
}

func TestGradHookMatchesStep(t *testing.T) {
	// A model with a gradient hook trains with the optimiser's step
	// inside TrainStep: with momentum, Nesterov, weight decay, L1 and
	// elastic-net penalties and a schedule, the weights come out with the
	// bits of training the same model without the hook.
	args := []string{"-epochs", "2", "-limit", "500", "-momentum", "0.8", "-nesterov", "-wd", "1e-3",
		"-l1", "1e-4", "-elastic", "1e-4:0.5", "-schedule", "cosine:1", "-quiet"}
	var plain *linear
	var hooked *hookedLinear
	_, err := run(func(seed uint64) Model { plain = newLinear(seed); return plain }, append([]string{"-save", ""}, args...), io.Discard, testEnv)
	require.NoError(t, err)
	_, err = run(func(seed uint64) Model { hooked = &hookedLinear{linear: newLinear(seed)}; return hooked }, append([]string{"-save", ""}, args...), io.Discard, testEnv)
	require.NoError(t, err)
	require.Equal(t, 16, hooked.calls, "hooked steps: 2 epochs of 500 images in batches of 64")
	require.Nil(t, hooked.hook, "the trainer takes its hook back")
	require.Equal(t, plain.w.Data, hooked.w.Data)
	require.Equal(t, plain.b.Data, hooked.b.Data)
}

// rangedLinear is hookedLinear with a range hook: while one is set, it
// hands the weight over by rows of its gradient, two at a time, as a
// generated model's weight-gradient product does.
type rangedLinear struct {
	hookedLinear
	ranges runtime.RangeHook
	rows   int // rows handed over
}

func (m *rangedLinear) SetRangeHook(r runtime.RangeHook) { m.ranges = r }

func (m *rangedLinear) TrainStep(x []float32, labels []int32) float32 {
	if m.ranges == nil {
		return m.hookedLinear.TrainStep(x, labels)
	}
	loss := m.linear.TrainStep(x, labels)
	m.hook(m.b)
	cols := m.w.Shape[1]
	for r := 0; r < m.w.Shape[0]; r += 2 {
		m.ranges.UpdateRange(m.w, r*cols, min(r+2, m.w.Shape[0])*cols)
		m.rows += min(2, m.w.Shape[0]-r)
	}
	m.calls++
	return loss
}

func TestRangeHookMatchesStep(t *testing.T) {
	// A model that can take its weight's update by rows gets a range
	// hook, which adds the penalties and takes the optimiser's step, and
	// trains to the bits of the model without hooks.
	for _, penalty := range []bool{false, true} {
		args := []string{"-epochs", "1", "-limit", "500", "-momentum", "0.8", "-nesterov", "-wd", "1e-3", "-quiet", "-save", ""}
		if penalty {
			args = append(args, "-l1", "1e-4", "-elastic", "1e-4:0.5")
		}
		var plain *linear
		var ranged *rangedLinear
		_, err := run(func(seed uint64) Model { plain = newLinear(seed); return plain }, args, io.Discard, testEnv)
		require.NoError(t, err)
		_, err = run(func(seed uint64) Model {
			ranged = &rangedLinear{hookedLinear: hookedLinear{linear: newLinear(seed)}}
			return ranged
		}, args, io.Discard, testEnv)
		require.NoError(t, err)
		require.Equal(t, 8, ranged.calls, "penalty %v: hooked steps", penalty)
		require.Equal(t, 8*ranged.w.Shape[0], ranged.rows, "penalty %v: every row of every step by rows", penalty)
		require.Nil(t, ranged.ranges, "penalty %v: the trainer takes its range hook back", penalty)
		require.Equal(t, plain.w.Data, ranged.w.Data, "penalty %v", penalty)
		require.Equal(t, plain.b.Data, ranged.b.Data, "penalty %v", penalty)
	}
}
