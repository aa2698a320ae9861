package trainer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/passes"
	"github.com/cnnc/cnnc/runtime"
	"github.com/cnnc/cnnc/runtime/augment"
	"github.com/cnnc/cnnc/runtime/data"
)

// dropLinear is linear with input dropout drawn from a step counter, as a
// generated model with dropout has, so that a resumed run must restore the
// counter to match.
type dropLinear struct {
	*linear
	seed, step uint64
	buf        []float32
}

func newDropLinear(seed uint64) Model {
	return &dropLinear{linear: newLinear(seed), seed: seed, buf: make([]float32, linBatch*linPixels)}
}

func (m *dropLinear) TrainStep(x []float32, labels []int32) float32 {
	b := m.buf[:len(x)]
	for i, v := range x {
		if runtime.Uniform01(m.seed, m.step, uint64(i)) < 0.2 {
			v = 0
		}
		b[i] = v
	}
	m.step++
	return m.linear.TrainStep(b, labels)
}

func (m *dropLinear) Step() uint64        { return m.step }
func (m *dropLinear) SetStep(step uint64) { m.step = step }

// runModel runs the trainer on models made by newModel.
func runModel(t *testing.T, newModel func(uint64) Model, args ...string) (*result, string, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := run(newModel, args, &out, testEnv)
	return res, out.String(), err
}

// noTimes clears the timings of epochs, which differ between runs.
func noTimes(epochs []epochMetrics) []epochMetrics {
	epochs = slices.Clone(epochs)
	for i := range epochs {
		epochs[i].ImagesPerSec, epochs[i].Seconds, epochs[i].TrainSeconds = 0, 0, 0
	}
	return epochs
}

// requireSameTensors checks that two checkpoints hold the same tensors, bit
// for bit, and the same run position.
func requireSameTensors(t *testing.T, a, b string) {
	t.Helper()
	ta, ma, err := runtime.LoadTensors(a)
	require.NoError(t, err)
	tb, mb, err := runtime.LoadTensors(b)
	require.NoError(t, err)
	require.Equal(t, len(ta), len(tb))
	for name, x := range ta {
		y, ok := tb[name]
		require.True(t, ok, "tensor %q", name)
		require.Equal(t, x.Shape, y.Shape, name)
		for i := range x.F32 {
			if math.Float32bits(x.F32[i]) != math.Float32bits(y.F32[i]) {
				t.Fatalf("tensor %q differs at %d: %v and %v", name, i, x.F32[i], y.F32[i])
			}
		}
	}
	for _, k := range []string{epochKey, stepKey, optStepsKey, dropoutKey, lrKey, preprocessKey} {
		require.Equal(t, ma[k], mb[k], "metadata %q", k)
	}
}

func TestResumeEqualsUninterrupted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newModel func(uint64) Model
		args     []string
	}{
		{"linear with dropout, every option", newDropLinear, []string{
			"-limit", "1200", "-seed", "3", "-augment", "flip,crop:2,rotate:10,jitter:0.1",
			"-schedule", "cosine:1:2", "-warmup", "0.5", "-val", "0.1", "-l1", "1e-5", "-elastic", "1e-5:0.5",
			"-wd", "1e-4", "-nesterov", "-preprocess", "channel", "-std", "-init", "xavier_uniform",
		}},
		{"linear, defaults", func(s uint64) Model { return newLinear(s) }, []string{"-limit", "1000", "-lr-steps", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			straight, part := filepath.Join(dir, "straight.safetensors"), filepath.Join(dir, "part.safetensors")
			whole, _, err := runModel(t, tc.newModel, append([]string{"-epochs", "3", "-save", straight}, tc.args...)...)
			require.NoError(t, err)
			first, _, err := runModel(t, tc.newModel, append([]string{"-epochs", "1", "-save", part}, tc.args...)...)
			require.NoError(t, err)
			require.Equal(t, noTimes(whole.epochs[:1]), noTimes(first.epochs))

			// A row of an epoch the checkpoint does not have, as a run
			// killed between the two writes leaves: resume drops it.
			f, err := os.OpenFile(filepath.Join(dir, "part.metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString(`{"epoch":2,"loss":99}` + "\n")
			require.NoError(t, err)
			require.NoError(t, f.Close())

			// Only -resume and -epochs: the rest comes from the checkpoint.
			rest, out, err := runModel(t, tc.newModel, "-resume", part, "-epochs", "3")
			require.NoError(t, err)
			require.Contains(t, out, "resumed "+part+`: model "linear" after 1 epoch of 3`)
			require.Contains(t, out, "epoch 2/3  loss ")
			require.NotContains(t, out, "epoch 1/3")
			require.Equal(t, noTimes(whole.epochs[1:]), noTimes(rest.epochs), "epochs 2 and 3, resumed and not")
			requireSameTensors(t, straight, part)

			for _, ext := range []string{".metrics.jsonl", ".metrics.csv"} {
				a, err := os.ReadFile(filepath.Join(dir, "straight"+ext))
				require.NoError(t, err)
				b, err := os.ReadFile(filepath.Join(dir, "part"+ext))
				require.NoError(t, err)
				require.Equal(t, 3, bytes.Count(b, []byte("\n"))-bytes.Count(b, []byte("epoch,")), "rows of %s", ext)
				require.Equal(t, len(strings.Split(string(a), "\n")), len(strings.Split(string(b), "\n")), ext)
			}

			_, _, err = runModel(t, tc.newModel, "-resume", part)
			require.ErrorContains(t, err, "the run has finished 3 epochs of 3 already; pass -epochs N, N above 3, to train on")
		})
	}
}

func TestScheduleFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []float64 // learning rate of each epoch's first step
	}{
		{[]string{"-lr", "0.1"}, []float64{0.1, 0.1, 0.1, 0.01}},
		{[]string{"-lr", "0.1", "-schedule", "step:1,3:0.5"}, []float64{0.1, 0.05, 0.05, 0.025}},
		{[]string{"-lr", "0.1", "-schedule", "exp:0.5"}, []float64{0.1, 0.05, 0.025, 0.0125}},
		{[]string{"-lr", "0.1", "-schedule", "inv:1"}, []float64{0.1, 0.05, 0.1 / 3, 0.025}},
		{[]string{"-lr", "0.1", "-schedule", "cosine:2"}, []float64{0.1, 0.05, 0.1, 0.05}},
		{[]string{"-lr", "0.1", "-schedule", "cosine:1:2"}, []float64{0.1, 0.1, 0.05, 0.1}},
		{[]string{"-lr", "0.1", "-schedule", "constant", "-warmup", "2"}, []float64{0.001, 0.0505, 0.1, 0.1}},
		{[]string{"-lr", "0.1", "-schedule", "warmup:1:0.5+exp:0.5"}, []float64{0.05, 0.05, 0.025, 0.0125}},
		{[]string{"-lr", "0.1", "-warmup", "1"}, []float64{0.001, 0.1, 0.1, 0.01}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res, out, err := runLinear(t, append([]string{"-epochs", "4", "-limit", "300"}, tc.args...)...)
			require.NoError(t, err)
			var got []float64
			for i, e := range res.epochs {
				got = append(got, e.LR)
				require.Contains(t, out, "epoch "+string(rune('1'+i))+"/4  loss ")
			}
			require.InDeltaSlice(t, tc.want, got, 1e-12)
		})
	}

	// Within an epoch the rate follows the schedule at every step: the
	// checkpoint's rate of the next step is the schedule's at the epoch's
	// end, where cosine:2 has fallen halfway.
	ck := filepath.Join(t.TempDir(), "ck.safetensors")
	_, _, err := runLinear(t, "-epochs", "1", "-limit", "300", "-lr", "0.1", "-schedule", "cosine:2", "-save", ck)
	require.NoError(t, err)
	_, meta, err := runtime.LoadTensors(ck)
	require.NoError(t, err)
	next, err := strconv.ParseFloat(meta[lrKey], 64)
	require.NoError(t, err)
	require.InDelta(t, 0.05, next, 1e-15)
	require.Equal(t, "cosine:2:1:0", meta[scheduleKey])
}

// TestInitFlag checks -init's statistics on conv and linear weights and
// that biases keep theirs.
func TestInitFlag(t *testing.T) {
	newParams := func() []*runtime.Param {
		ps := []*runtime.Param{
			runtime.NewParam("conv1.weight", []int{64, 32, 3, 3}, true), // fans 288, 576
			runtime.NewParam("conv1.bias", []int{64}, true),
			runtime.NewParam("bn1.weight", []int{64}, true),
			runtime.NewParam("fc1.weight", []int{300, 500}, true),
			runtime.NewParam("bn1.running_mean", []int{64}, false),
		}
		for _, p := range ps {
			for i := range p.Data {
				p.Data[i] = 7
			}
		}
		return ps
	}
	stats := func(d []float32) (mean, std float64) {
		for _, v := range d {
			mean += float64(v)
		}
		mean /= float64(len(d))
		for _, v := range d {
			std += (float64(v) - mean) * (float64(v) - mean)
		}
		return mean, math.Sqrt(std / float64(len(d)))
	}
	for _, tc := range []struct {
		spec           string
		convStd, fcStd float64
	}{
		{"const:0.5", 0, 0},
		{"normal:0.01", 0.01, 0.01},
		{"xavier_normal", math.Sqrt(2.0 / (288 + 576)), math.Sqrt(2.0 / 800)},
		{"glorot_uniform", math.Sqrt(2.0 / (288 + 576)), math.Sqrt(2.0 / 800)},
		{"he_normal", math.Sqrt(2.0 / 288), math.Sqrt(2.0 / 500)},
		{"kaiming_normal:fan_out", math.Sqrt(2.0 / 576), math.Sqrt(2.0 / 300)},
		{"kaiming_uniform", math.Sqrt(2.0 / 288), math.Sqrt(2.0 / 500)},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			c, err := parseFlags([]string{"-init", tc.spec}, nil)
			require.NoError(t, err)
			ps := newParams()
			n, err := initWeights(ps, *c.init, 5)
			require.NoError(t, err)
			require.Equal(t, 2, n)
			for i, want := range []float64{tc.convStd, tc.fcStd} {
				p := ps[[]int{0, 3}[i]]
				mean, std := stats(p.Data)
				if tc.spec == "const:0.5" {
					require.Equal(t, 0.5, mean, p.Name)
					require.Zero(t, std, p.Name)
					continue
				}
				require.InDelta(t, 0, mean, 4*want/math.Sqrt(float64(len(p.Data))), "%s mean", p.Name)
				require.InEpsilon(t, want, std, 0.04, "%s standard deviation", p.Name)
			}
			for _, i := range []int{1, 2, 4} {
				require.Equal(t, float32(7), ps[i].Data[0], "%s keeps its values", ps[i].Name)
			}
			again := newParams()
			_, err = initWeights(again, *c.init, 5)
			require.NoError(t, err)
			require.Equal(t, ps[0].Data, again[0].Data, "same seed, same weights")
			if tc.convStd != 0 {
				other := newParams()
				_, err = initWeights(other, *c.init, 6)
				require.NoError(t, err)
				require.NotEqual(t, ps[0].Data, other[0].Data, "another seed")
			}
		})
	}

	// Through the trainer: with a learning rate too small to move them, the
	// checkpoint holds the initial weights.
	ck := filepath.Join(t.TempDir(), "ck.safetensors")
	_, out, err := runLinear(t, "-init", "const:0.25", "-epochs", "1", "-limit", "200", "-lr", "1e-30", "-momentum", "0", "-save", ck)
	require.NoError(t, err)
	require.Contains(t, out, "init: const:0.25 for 1 weight (biases and batch-norm keep the model's)")
	tensors, _, err := runtime.LoadTensors(ck)
	require.NoError(t, err)
	for _, v := range tensors["fc.weight"].F32 {
		require.Equal(t, float32(0.25), v)
	}
	require.NotEqual(t, float32(0.25), tensors["fc.bias"].F32[0])
}

// regGraph builds softmax regression on 784 features with a penalty term,
// differentiated: the graph-level regularisation of ir.
func regGraph(t *testing.T, batch int, penalty func(b *ir.Builder) *ir.Node) *ir.Graph {
	b := ir.NewBuilder("reg", batch)
	x := b.Input("x", linPixels)
	y := b.Labels("y", linClasses)
	loss := b.SoftmaxCrossEntropy(b.Linear("fc", x, linPixels, linClasses), y)
	if penalty != nil {
		loss = b.Add(loss, penalty(b))
	}
	b.Loss(loss)
	g := b.Graph()
	require.NoError(t, g.Validate())
	d, err := passes.Autodiff(g)
	require.NoError(t, err)
	return d
}

// TestRegularisationMatchesGraph checks that the trainer's -wd, -l1 and
// -elastic change the gradient as ir's l2, l1 and elasticnet terms in the
// loss do, evaluated by the reference evaluator on the same weights.
func TestRegularisationMatchesGraph(t *testing.T) {
	const n = 8
	train, _, _, err := testEnv.loadData(dataSpec{kind: "fashion"})
	require.NoError(t, err)
	x, labels := train.Images[:n*linPixels], train.Labels[:n]
	m := newLinear(9)
	for i := 0; i < len(m.w.Data); i += 7 {
		m.w.Data[i] = 0 // sign(0) = 0
	}
	feeds := map[string]*eval.Tensor{
		"x":         eval.FromFloat32(ir.Shape{n, linPixels}, x),
		"y":         eval.NewTensor(ir.Shape{n}),
		"fc.weight": eval.FromFloat32(ir.Shape{linClasses, linPixels}, m.w.Data),
		"fc.bias":   eval.FromFloat32(ir.Shape{linClasses}, m.b.Data),
	}
	for i, l := range labels {
		feeds["y"].Data[i] = float64(l)
	}
	graphGrads := func(penalty func(b *ir.Builder) *ir.Node) (w, b []float64) {
		out, err := eval.Outputs(regGraph(t, n, penalty), feeds, eval.Options{})
		require.NoError(t, err)
		return out["grad:fc.weight"].Data, out["grad:fc.bias"].Data
	}
	requireClose := func(want []float64, got []float32, what string) {
		t.Helper()
		require.Len(t, got, len(want))
		for i := range want {
			if math.Abs(want[i]-float64(got[i])) > 2e-6 {
				t.Fatalf("%s: element %d is %v, want %v", what, i, got[i], want[i])
			}
		}
	}
	// The unregularised gradients agree, so the differences below are the
	// penalties'.
	w0, b0 := graphGrads(nil)
	m.TrainStep(x, labels)
	requireClose(w0, m.w.Grad, "plain weight gradient")
	requireClose(b0, m.b.Grad, "plain bias gradient")

	const lambda, beta = 1e-3, 0.7
	for _, tc := range []struct {
		flags   []string
		penalty func(b *ir.Builder) *ir.Node
		bias    bool // the penalty reaches the bias
	}{
		{[]string{"-l1", "1e-3"}, func(b *ir.Builder) *ir.Node { return b.L1(lambda, "fc.weight") }, false},
		{[]string{"-elastic", "1e-3:0.7"}, func(b *ir.Builder) *ir.Node { return b.ElasticNet(lambda, beta, "fc.weight") }, false},
		{[]string{"-elastic", "1e-3:0"}, func(b *ir.Builder) *ir.Node { return b.L1(lambda, "fc.weight") }, false},
		// -wd is the optimiser's, on every parameter: the gradient of
		// (wd/2)*sum w^2.
		{[]string{"-wd", "2e-3"}, func(b *ir.Builder) *ir.Node { return b.L2(lambda, "fc.weight", "fc.bias") }, true},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			wantW, wantB := graphGrads(tc.penalty)
			c, err := parseFlags(append(tc.flags, "-momentum", "0"), nil)
			require.NoError(t, err)
			mm := newLinear(9)
			copy(mm.w.Data, m.w.Data)
			mm.TrainStep(x, labels)
			params := mm.Params()
			addPenalties(runtime.Weights(params), c)
			// One SGD step with learning rate 1 moves each parameter by
			// its regularised gradient.
			before := [][]float32{slices.Clone(mm.w.Data), slices.Clone(mm.b.Data)}
			opt := runtime.NewSGD(params, 1, c.momentum, false, c.wd)
			opt.Step()
			for i, p := range params {
				step := make([]float32, len(p.Data))
				for j := range step {
					step[j] = before[i][j] - p.Data[j]
				}
				want := [][]float64{wantW, wantB}[i]
				requireClose(want, step, p.Name+" step")
			}
			if !tc.bias {
				require.Equal(t, b0, wantB, "the graph's penalty leaves the bias alone")
			}
		})
	}
}

// recorder keeps a copy of the first batch that TrainStep sees.
type recorder struct {
	*linear
	first []float32
}

func (m *recorder) TrainStep(x []float32, labels []int32) float32 {
	if m.first == nil {
		m.first = slices.Clone(x)
	}
	return m.linear.TrainStep(x, labels)
}

// TestAugmentThenPreprocess checks that each batch is augmented first, from
// images in [0, 1], and normalised after, and that augmentation is seeded.
func TestAugmentThenPreprocess(t *testing.T) {
	var rec *recorder
	newModel := func(seed uint64) Model {
		rec = &recorder{linear: newLinear(seed)}
		return rec
	}
	_, out, err := runModel(t, newModel, "-save", "", "-epochs", "1", "-limit", "500", "-augment", "flip:1", "-seed", "4")
	require.NoError(t, err)
	require.Contains(t, out, "augment: flip:1\n")

	train, _, _, err := testEnv.loadData(dataSpec{kind: "fashion"})
	require.NoError(t, err)
	train = head(train, 500)
	pre := data.ComputePreprocess(train, false, false)
	b := data.NewBatcher(train, defaultBatch, runtime.NewRNG(runtime.SplitMix64(4^shuffleDomain)))
	x, y := make([]float32, linBatch*linPixels), make([]int32, linBatch)
	nb, _ := b.Next(x, y)
	want := make([]float32, nb*linPixels)
	for i := range nb {
		augment.FlipH(want[i*linPixels:(i+1)*linPixels], x[i*linPixels:(i+1)*linPixels], 1, 28, 28)
	}
	pre.Apply(want, nb)
	require.Equal(t, want, rec.first)

	run := func(args ...string) []epochMetrics {
		res, _, err := runLinear(t, append([]string{"-epochs", "1", "-limit", "600"}, args...)...)
		require.NoError(t, err)
		return noTimes(res.epochs)
	}
	a := run("-augment", "flip,crop:3,rotate:20,jitter:0.05")
	require.Equal(t, a, run("-augment", "flip,crop:3,rotate:20,jitter:0.05"), "same seed, same run")
	require.NotEqual(t, a[0].Loss, run()[0].Loss, "augmentation changes the batches")
	require.NotEqual(t, a[0].Loss, run("-augment", "flip,crop:3,rotate:20,jitter:0.05", "-seed", "1")[0].Loss)
}

func TestPreprocessFlags(t *testing.T) {
	train, _, _, err := testEnv.loadData(dataSpec{kind: "fashion"})
	require.NoError(t, err)
	train = head(train, 1000)
	for _, tc := range []struct {
		args    []string
		say     string
		kind    string
		shape   []int // of the mean; nil for none
		std     bool
		compute func() data.Preprocess
	}{
		{nil, "mean image subtracted", "pixel", []int{1, 28, 28}, false, func() data.Preprocess { return data.ComputePreprocess(train, false, false) }},
		{[]string{"-std"}, "mean image subtracted, divided by the standard deviation", "pixel", []int{1, 28, 28}, true, func() data.Preprocess { return data.ComputePreprocess(train, false, true) }},
		{[]string{"-preprocess", "channel"}, "channel means subtracted", "channel", []int{1, 1, 1}, false, func() data.Preprocess { return data.ComputePreprocess(train, true, false) }},
		{[]string{"-preprocess", "channel", "-std"}, "channel means subtracted, divided by the standard deviation", "channel", []int{1, 1, 1}, true, func() data.Preprocess { return data.ComputePreprocess(train, true, true) }},
		{[]string{"-preprocess", "none"}, "no preprocessing", "none", nil, false, nil},
		{[]string{"-mean=false"}, "no preprocessing", "none", nil, false, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ck := filepath.Join(t.TempDir(), "ck.safetensors")
			trained, out, err := runLinear(t, append([]string{"-epochs", "1", "-limit", "1000", "-save", ck}, tc.args...)...)
			require.NoError(t, err)
			require.Contains(t, out, "of [1 28 28], "+tc.say+"\n")
			tensors, meta, err := runtime.LoadTensors(ck)
			require.NoError(t, err)
			require.Equal(t, tc.kind, meta[preprocessKey])
			if tc.shape == nil {
				require.NotContains(t, tensors, data.PreprocessMeanName)
			} else {
				want := tc.compute()
				require.Equal(t, tc.shape, tensors[data.PreprocessMeanName].Shape)
				require.Equal(t, want.Mean, tensors[data.PreprocessMeanName].F32)
				if tc.std {
					require.Equal(t, want.Std, tensors[data.PreprocessStdName].F32)
				} else {
					require.NotContains(t, tensors, data.PreprocessStdName)
				}
			}
			// Evaluation applies the checkpoint's transform, whatever the
			// flags say.
			evaluated, _, err := runLinear(t, "-eval-only", "-load", ck, "-limit", "1000", "-preprocess", "pixel")
			require.NoError(t, err)
			require.Equal(t, trained.testAcc, evaluated.testAcc)
		})
	}
}

func TestValidationSplitAndMetrics(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "run.safetensors")
	res, out, err := runLinear(t, "-epochs", "2", "-limit", "2000", "-val", "0.1", "-save", ck)
	require.NoError(t, err)
	m := regexp.MustCompile(`(\d+) training, (\d+) validation and 1000 test images`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	nt, _ := strconv.Atoi(m[1])
	nv, _ := strconv.Atoi(m[2])
	require.Equal(t, 2000, nt+nv)
	require.InDelta(t, 200, nv, 5)
	require.Regexp(t, `epoch 1/2  loss [0-9.]+  train acc [0-9.]+%  val acc [0-9.]+%  test acc`, out)
	require.NotNil(t, res.epochs[1].ValAcc)
	require.Greater(t, *res.epochs[1].ValAcc, 0.5)

	f, err := os.Open(filepath.Join(dir, "run.metrics.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines int
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		require.Equal(t, *res.epochs[lines].ValAcc, m["val_acc"])
		lines++
	}
	require.Equal(t, 2, lines)
	csv, err := os.ReadFile(filepath.Join(dir, "run.metrics.csv"))
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Len(t, rows, 3)
	require.Equal(t, csvHeader, rows[0])
	require.Equal(t, res.epochs[1].csvRow(), rows[2])
	require.True(t, strings.HasPrefix(rows[1], "1,"))

	// Without -val there is no val_acc, and -metrics-csv "" writes no CSV.
	ck2 := filepath.Join(dir, "plain.safetensors")
	_, out, err = runLinear(t, "-epochs", "1", "-limit", "500", "-save", ck2, "-metrics-csv", "", "-metrics", filepath.Join(dir, "m.jsonl"))
	require.NoError(t, err)
	require.NotContains(t, out, "val acc")
	b, err := os.ReadFile(filepath.Join(dir, "m.jsonl"))
	require.NoError(t, err)
	require.NotContains(t, string(b), "val_acc")
	_, err = os.Stat(filepath.Join(dir, "plain.metrics.csv"))
	require.True(t, os.IsNotExist(err))
}

// writePNG writes a grey w x h image whose pixels are v.
func writePNG(t *testing.T, path string, w, h int, v uint8) {
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v + uint8(i%7)
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
}

func TestDatasets(t *testing.T) {
	dir := t.TempDir()
	// A folder of two classes, dark and light, of mixed sizes.
	flat := filepath.Join(dir, "flat")
	for i := range 20 {
		writePNG(t, filepath.Join(flat, "dark", string(rune('a'+i))+".png"), 20+i, 30, 10)
		writePNG(t, filepath.Join(flat, "light", string(rune('a'+i))+".png"), 40, 28+i, 200)
	}
	res, out, err := runLinear(t, "-dataset", "folder", "-data", flat, "-epochs", "3")
	require.NoError(t, err)
	require.Contains(t, out, "32 training and 8 test images of [1 28 28]")
	// The model has 10 classes and the folder 2: accuracy reads the
	// model's rows of 10 logits.
	require.Equal(t, 1.0, res.testAcc, "dark and light are easy to tell apart")

	split := filepath.Join(dir, "split")
	for _, part := range []string{"train", "test"} {
		for i := range 4 {
			writePNG(t, filepath.Join(split, part, "dark", string(rune('a'+i))+".png"), 28, 28, 5)
			writePNG(t, filepath.Join(split, part, "light", string(rune('a'+i))+".png"), 28, 28, 220)
		}
	}
	_, out, err = runLinear(t, "-dataset", "folder", "-data", split, "-epochs", "1")
	require.NoError(t, err)
	require.Contains(t, out, "8 training and 8 test images")

	// Errors name the file and say why.
	bad := filepath.Join(dir, "bad")
	writePNG(t, filepath.Join(bad, "a", "1.png"), 28, 28, 5)
	require.NoError(t, os.MkdirAll(filepath.Join(bad, "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bad, "b", "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644))
	_, _, err = runLinear(t, "-dataset", "folder", "-data", bad)
	require.ErrorContains(t, err, filepath.Join(bad, "b", "broken.png"))

	idx := filepath.Join(dir, "idx")
	require.NoError(t, os.MkdirAll(idx, 0o755))
	for _, name := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		b, err := os.ReadFile(filepath.Join("..", "data", "fashionmnist", name+".gz"))
		require.NoError(t, err)
		if name == "t10k-images-idx3-ubyte" {
			b = b[:len(b)/2] // truncated
		}
		require.NoError(t, os.WriteFile(filepath.Join(idx, name+".gz"), b, 0o644))
	}
	_, _, err = runLinear(t, "-dataset", "mnist", "-data", idx)
	require.ErrorContains(t, err, filepath.Join(idx, "t10k-images-idx3-ubyte.gz"))

	cifar := filepath.Join(dir, "cifar")
	require.NoError(t, os.MkdirAll(cifar, 0o755))
	for _, name := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
		size := 3073 * 2
		if name == "data_batch_1.bin" {
			size += 100 // not a whole number of records
		}
		require.NoError(t, os.WriteFile(filepath.Join(cifar, name), make([]byte, size), 0o644))
	}
	_, _, err = runLinear(t, "-dataset", "cifar10", "-data", cifar)
	require.ErrorContains(t, err, "data_batch_1.bin")

	for _, kind := range []string{"mnist", "cifar10", "folder"} {
		_, _, err = runLinear(t, "-dataset", kind)
		require.ErrorContains(t, err, "-dataset "+kind+" needs -data DIR")
	}
}

func TestResumeErrors(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "ck.safetensors")
	_, _, err := runLinear(t, "-epochs", "1", "-limit", "300", "-save", ck)
	require.NoError(t, err)
	b, err := os.ReadFile(ck)
	require.NoError(t, err)
	tensors, meta, err := runtime.LoadTensors(ck)
	require.NoError(t, err)

	write := func(name string, edit func(meta map[string]string, tensors map[string]runtime.Tensor)) string {
		m, ts := maps.Clone(meta), maps.Clone(tensors)
		edit(m, ts)
		var params []*runtime.Param
		for k, v := range ts {
			params = append(params, &runtime.Param{Name: k, Shape: v.Shape, Data: v.F32})
		}
		p := filepath.Join(dir, name)
		require.NoError(t, runtime.SaveTensors(p, params, m))
		return p
	}
	truncated := filepath.Join(dir, "truncated.safetensors")
	require.NoError(t, os.WriteFile(truncated, b[:len(b)-50], 0o644))
	garbage := filepath.Join(dir, "garbage.safetensors")
	require.NoError(t, os.WriteFile(garbage, []byte("\xff\xff\xff\xff\xff\xff\xff\x00garbage"), 0o644))
	weightsOnly := filepath.Join(dir, "weights.safetensors")
	require.NoError(t, newLinear(1).Save(weightsOnly))

	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "nowhere.safetensors"), "no such file or directory"},
		{truncated, "truncated"},
		{garbage, "not a safetensors file"},
		{weightsOnly, "holds weights only, which -load takes"},
		{write("badstep.safetensors", func(m map[string]string, _ map[string]runtime.Tensor) { m[stepKey] = "x" }), `metadata "cnnc.run.step" is "x", want a whole number; the checkpoint is corrupt`},
		{write("badargs.safetensors", func(m map[string]string, _ map[string]runtime.Tensor) { m[argsKey] = "[1" }), "is not a list of flags"},
		{write("badflag.safetensors", func(m map[string]string, _ map[string]runtime.Tensor) { m[argsKey] = `["-bogus=1"]` }), "flag provided but not defined: -bogus"},
		{write("nomomentum.safetensors", func(_ map[string]string, ts map[string]runtime.Tensor) {
			delete(ts, optimPrefix+"fc.weight.momentum_buffer")
		}), `lacks the optimiser's tensor "cnnc.optim.fc.weight.momentum_buffer"`},
		{write("badmomentum.safetensors", func(_ map[string]string, ts map[string]runtime.Tensor) {
			ts[optimPrefix+"fc.bias.momentum_buffer"] = runtime.Tensor{Shape: []int{3}, F32: make([]float32, 3)}
		}), `the optimiser's tensor "cnnc.optim.fc.bias.momentum_buffer" has shape [3], want [10]`},
		{write("nomean.safetensors", func(_ map[string]string, ts map[string]runtime.Tensor) { delete(ts, data.PreprocessMeanName) }), "tensor \"cnnc.preprocess.mean\" is missing; the checkpoint is corrupt"},
		{write("noweight.safetensors", func(_ map[string]string, ts map[string]runtime.Tensor) { delete(ts, "fc.weight") }), `the checkpoint lacks tensor "fc.weight"`},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			_, _, err := runLinear(t, "-resume", tc.path, "-epochs", "2")
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-schedule", "bogus"}, `-schedule: schedule "bogus": unknown schedule "bogus"`},
		{[]string{"-schedule", "cosine:0"}, "cosine T0 0 must be > 0 epochs"},
		{[]string{"-schedule", "warmup:1+constant", "-warmup", "1"}, "has a warm-up already"},
		{[]string{"-schedule", "constant", "-lr-steps", "2"}, "-lr-steps and -lr-gamma shape the default schedule only"},
		{[]string{"-warmup", "-1"}, "-warmup -1: give a number of epochs >= 0"},
		{[]string{"-init", "bogus"}, `-init: init "bogus": unknown scheme "bogus"`},
		{[]string{"-init", "kaiming_normal:fan_sideways"}, `unknown mode "fan_sideways"`},
		{[]string{"-l1", "-1"}, "-l1 -1: the L1 penalty must be 0 or positive"},
		{[]string{"-elastic", "1e-4"}, `-elastic "1e-4": give LAMBDA:BETA`},
		{[]string{"-elastic", "x:1"}, `-elastic "x:1": give LAMBDA:BETA`},
		{[]string{"-preprocess", "global"}, `-preprocess "global": want none, pixel (mean image) or channel`},
		{[]string{"-preprocess", "none", "-std"}, "-std divides by the standard deviation after subtracting the mean"},
		{[]string{"-mean=false", "-preprocess", "channel"}, "-mean=false and -preprocess channel disagree"},
		{[]string{"-augment", "flip,bogus"}, `-augment: augment "flip,bogus": unknown`},
		{[]string{"-dataset", "imagenet"}, `-dataset "imagenet": want one of fashion, mnist, cifar10, folder`},
		{[]string{"-val", "1"}, "-val 1: give the fraction of the training set to hold out, in [0, 1)"},
		{[]string{"-val", "0.0001"}, "-val 0.0001 holds out no image"},
		{[]string{"-resume", "a", "-load", "b"}, "-resume and -load both give a checkpoint"},
		{[]string{"-tta", "rotate"}, `-tta "rotate": the test-time augmentation this trainer knows is flip`},
		{[]string{"-snapshots", "2", "-save", "x.safetensors"}, "-snapshots 2: a snapshot ensemble saves the model at the end of each period of a cosine schedule"},
		{[]string{"-snapshots", "2", "-schedule", "cosine:1"}, "-snapshots 2: the snapshots are checkpoints beside the run's; give -save PATH"},
		{[]string{"-snapshots", "-1"}, "-snapshots -1: give how many"},
		{[]string{"-ensemble", "a,b"}, "-ensemble evaluates checkpoints together; give -eval-only with it"},
		{[]string{"-ensemble", "a,,b", "-eval-only"}, `-ensemble "a,,b": give checkpoint paths separated by single commas`},
		{[]string{"-ensemble", "a", "-eval-only", "-load", "b"}, "-ensemble and -load both name checkpoints"},
		{[]string{"-eval-only"}, "-eval-only needs a checkpoint to evaluate: add -load PATH, or -ensemble with a comma-separated list of checkpoints"},
		{[]string{"-ensemble", "nothere.safetensors", "-eval-only"}, "nothere.safetensors"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// In a directory of its own, which a rejected run leaves empty.
			dir := t.TempDir()
			t.Chdir(dir)
			_, _, err := runLinear(t, append([]string{"-epochs", "1", "-limit", "300"}, tc.args...)...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			left, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, left, "files a rejected run wrote")
		})
	}
}

// panelLinear is linear with its weight stored as column panels
// (runtime.Param.Panels), as a generated model stores a large linear
// layer's weight where runtime/gemm reads it fastest: it multiplies a
// row-major copy of it.
type panelLinear struct {
	*linear
	w *runtime.Param // the weight as column panels; linear's holds the copy
}

func newPanelLinear(seed uint64) Model {
	inner := newLinear(seed)
	w := runtime.NewParam(inner.w.Name, inner.w.Shape, true)
	copy(w.Data, inner.w.Data)
	w.UsePanels()
	return &panelLinear{linear: inner, w: w}
}

func (m *panelLinear) TrainStep(x []float32, labels []int32) float32 {
	runtime.FromPanels(m.linear.w.Data, m.w.Data, linClasses, linPixels)
	loss := m.linear.TrainStep(x, labels)
	runtime.ToPanels(m.w.Grad, m.linear.w.Grad, linClasses, linPixels)
	return loss
}

func (m *panelLinear) Predict(x []float32) []float32 {
	runtime.FromPanels(m.linear.w.Data, m.w.Data, linClasses, linPixels)
	return m.linear.Predict(x)
}

func (m *panelLinear) Params() []*runtime.Param { return []*runtime.Param{m.w, m.linear.b} }
func (m *panelLinear) State() []*runtime.Param  { return m.Params() }
func (m *panelLinear) Load(path string) error   { return runtime.LoadInto(path, m.State()) }
func (m *panelLinear) Save(path string) error   { return runtime.SaveTensors(path, m.State(), nil) }

// TestPanelWeights checks that a model whose weight lies as column panels
// trains as the same model with a row-major weight, bit for bit, through
// the options that touch the weights (initialisation, weight decay,
// penalties, momentum), that its checkpoints hold the row-major weight
// and momentum, and that it resumes from them.
func TestPanelWeights(t *testing.T) {
	args := []string{"-limit", "1000", "-seed", "5", "-l1", "1e-5", "-elastic", "1e-5:0.5", "-wd", "1e-4", "-nesterov", "-init", "xavier_uniform"}
	dir := t.TempDir()
	rows, panels, part := filepath.Join(dir, "rows.safetensors"), filepath.Join(dir, "panels.safetensors"), filepath.Join(dir, "part.safetensors")
	want, _, err := runModel(t, func(s uint64) Model { return newLinear(s) }, append([]string{"-epochs", "2", "-save", rows}, args...)...)
	require.NoError(t, err)
	got, _, err := runModel(t, newPanelLinear, append([]string{"-epochs", "2", "-save", panels}, args...)...)
	require.NoError(t, err)
	require.Equal(t, noTimes(want.epochs), noTimes(got.epochs))
	requireSameTensors(t, rows, panels)

	_, _, err = runModel(t, newPanelLinear, append([]string{"-epochs", "1", "-save", part}, args...)...)
	require.NoError(t, err)
	rest, _, err := runModel(t, newPanelLinear, "-resume", part, "-epochs", "2")
	require.NoError(t, err)
	require.Equal(t, noTimes(want.epochs[1:]), noTimes(rest.epochs))
	requireSameTensors(t, rows, part)
}
