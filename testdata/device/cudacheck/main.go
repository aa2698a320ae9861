// Command cudacheck checks cnnc's CUDA target on a machine with an NVIDIA
// GPU and measures it. It is built here, where Go is, and run there:
//
//	CGO_ENABLED=0 go build -o testdata/device/bin/cudacheck ./testdata/device/cudacheck
//	testdata/device/check.sh          # on the GPU machine; runs this and torch_bench.py
//
// In one run it opens the GPU and prints its name; compiles every model of
// the zoo and small models that use every op, and compares the GPU's
// logits, loss, gradients, buffer updates and SGD steps with the reference
// evaluator (float64) for a full and a partial batch; trains LeNet-5 on
// Fashion-MNIST for one epoch with SGD on the device and prints the test
// accuracy; and times training steps and inference for LeNet-5 and
// VGG-small at batches 64 and 256, with CUDA graphs (impl "cnnc" in the
// TSV file) and without (CNNC_CUDA_GRAPHS=0, impl "cnnc-nograph"). On a
// machine without a GPU it prints
// "cudacheck: no GPU: ..." and exits with status 0, or 1 with -require-gpu.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnnc/cnnc/codegen/cuda"
	"github.com/cnnc/cnnc/codegen/cuda/cudacheck"
	cnnc "github.com/cnnc/cnnc/runtime"
	cudart "github.com/cnnc/cnnc/runtime/cuda"
	"github.com/cnnc/cnnc/runtime/data"
)

func main() {
	var (
		requireGPU = flag.Bool("require-gpu", false, "exit with status 1 when there is no GPU")
		dataDir    = flag.String("data", "", "Fashion-MNIST IDX `dir` for the training run (default: the embedded subset)")
		tsv        = flag.String("tsv", "", "write the measurements to this `file` as tab-separated lines")
		skip       = flag.String("skip", "", "comma-separated parts to skip: compare, train, bench, profile (the kernels of the timed models, each timed alone)")
		benchTime  = flag.Duration("bench-time", 2*time.Second, "time to spend on each measurement")
		epochs     = flag.Int("epochs", 1, "epochs of the LeNet-5 training run")
		limit      = flag.Int("limit", 0, "train on the first `N` images only (0: all)")
		only       = flag.String("only", "", "comma-separated models to compare and time (default: all)")
		source     = flag.String("write-source", "", "write the CUDA source of every model the run compiles to `file` and exit (to build the CPU emulator for a dry run)")
		tf32       = flag.Bool("tf32", false, "also compare and time the models and op cases that have convolutions compiled with TF32 tensor-core convolutions (cnnc compile -cuda-tf32)")
	)
	flag.Parse()
	cfg := config{requireGPU: *requireGPU, dataDir: *dataDir, tsv: *tsv, skip: map[string]bool{}, only: map[string]bool{},
		benchTime: *benchTime, epochs: *epochs, limit: *limit, tf32: *tf32}
	for _, s := range strings.Split(*skip, ",") {
		cfg.skip[strings.TrimSpace(s)] = true
	}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.only[s] = true
		}
	}
	if *source != "" {
		if err := writeSource(*source, cfg); err != nil {
			fmt.Fprintf(os.Stderr, "cudacheck: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cudacheck: %v\n", err)
		os.Exit(1)
	}
}

// A report collects the lines of the summary and of the TSV file.
type report struct {
	tsv     io.Writer
	summary []string
	failed  bool
}

func (r *report) measure(model string, batch int, metric string, value float64, unit string) {
	r.measureImpl("cnnc", model, batch, metric, value, unit)
}

// measureImpl is measure for another implementation than "cnnc".
func (r *report) measureImpl(impl, model string, batch int, metric string, value float64, unit string) {
	if r.tsv != nil {
		fmt.Fprintf(r.tsv, "%s\t%s\t%d\t%s\t%.6g\t%s\n", impl, model, batch, metric, value, unit)
	}
}

// config holds the flags.
type config struct {
	requireGPU bool
	dataDir    string
	tsv        string
	skip, only map[string]bool
	benchTime  time.Duration
	epochs     int
	limit      int
	tf32       bool
}

func (c config) wants(model string) bool { return len(c.only) == 0 || c.only[model] }

// compareCases returns the cases to compare with the reference.
func compareCases(cfg config) ([]cudacheck.Case, error) {
	var cases []cudacheck.Case
	for _, c := range append(cudacheck.Ops(), cudacheck.Models()...) {
		if cfg.wants(c.Name) {
			cases = append(cases, c)
		}
	}
	return withTF32(cfg, cases)
}

// withTF32 appends to cases, with -tf32, the TF32 variants of those that
// have convolutions.
func withTF32(cfg config, cases []cudacheck.Case) ([]cudacheck.Case, error) {
	if !cfg.tf32 {
		return cases, nil
	}
	more, err := cudacheck.TF32Variants(cases)
	return append(cases, more...), err
}

// benchJobs returns the models and batches to time.
func benchJobs(cfg config) (cases []cudacheck.Case, batches []int, err error) {
	var models []cudacheck.Case
	for _, m := range cudacheck.Models() {
		if (m.Name == "lenet5" || m.Name == "vggsmall") && cfg.wants(m.Name) {
			models = append(models, m)
		}
	}
	if models, err = withTF32(cfg, models); err != nil {
		return nil, nil, err
	}
	for _, m := range models {
		for _, b := range []int{64, 256} {
			cases = append(cases, m)
			batches = append(batches, b)
		}
	}
	return cases, batches, nil
}

// writeSource writes the sources of every program the run compiles, one
// after the other (each starts with the shared library, which is guarded).
func writeSource(path string, cfg config) error {
	seen := map[string]bool{}
	var b strings.Builder
	add := func(c cudacheck.Case, batch int) error {
		p, err := cudacheck.Compile(c, batch)
		if err != nil {
			return err
		}
		if !seen[p.Source] {
			seen[p.Source] = true
			b.WriteString(p.Source)
		}
		return nil
	}
	if !cfg.skip["compare"] {
		cases, err := compareCases(cfg)
		if err != nil {
			return err
		}
		for _, c := range cases {
			if err := add(c, c.Batch); err != nil {
				return err
			}
		}
	}
	for _, c := range cudacheck.Models() {
		if c.Name == "lenet5" && !cfg.skip["train"] {
			if err := add(c, 64); err != nil {
				return err
			}
		}
	}
	if !cfg.skip["bench"] {
		cases, batches, err := benchJobs(cfg)
		if err != nil {
			return err
		}
		for i, c := range cases {
			if err := add(c, batches[i]); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func run(cfg config) error {
	requireGPU, dataDir, tsvPath, benchTime, epochs := cfg.requireGPU, cfg.dataDir, cfg.tsv, cfg.benchTime, cfg.epochs
	start := time.Now()
	dev, err := cudart.Open()
	if err != nil {
		if cudart.NoGPU(err) {
			fmt.Printf("cudacheck: no GPU: %v\n", err)
			if requireGPU {
				os.Exit(1)
			}
			return nil
		}
		return err
	}
	fmt.Printf("device: %s\n", dev)
	rep := &report{}
	if tsvPath != "" {
		f, err := os.Create(tsvPath)
		if err != nil {
			return err
		}
		defer f.Close()
		rep.tsv = f
		fmt.Fprintf(f, "impl\tmodel\tbatch\tmetric\tvalue\tunit\n")
	}
	if !cfg.skip["compare"] {
		cases, err := compareCases(cfg)
		if err != nil {
			return err
		}
		if err := compareAll(dev, rep, cases); err != nil {
			return err
		}
	}
	if !cfg.skip["train"] {
		if err := trainLeNet(dev, rep, dataDir, epochs, cfg.limit); err != nil {
			return err
		}
	}
	if !cfg.skip["bench"] {
		cases, batches, err := benchJobs(cfg)
		if err != nil {
			return err
		}
		if err := bench(dev, rep, benchTime, cases, batches, !cfg.skip["profile"]); err != nil {
			return err
		}
	}
	fmt.Printf("\nsummary (%.0fs on %s):\n", time.Since(start).Seconds(), dev.Name())
	for _, s := range rep.summary {
		fmt.Println("  " + s)
	}
	if rep.failed {
		return fmt.Errorf("some comparisons with the reference failed; see above")
	}
	return nil
}

// warm compiles the programs' sources in parallel so that the models made
// afterwards find them in NVRTC's cache.
func warm(dev *cudart.Device, progs []*cuda.Program) {
	t := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(runtime.NumCPU(), 2))
	var mu sync.Mutex
	var firstErr error
	for _, p := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := dev.Compile(p.Source, p.Plan.Name+".cu")
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			m.Unload()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Printf("compile: %v\n", firstErr)
	}
	fmt.Printf("compiled %d sources with NVRTC in %.1fs\n", len(progs), time.Since(t).Seconds())
}

func compareAll(dev *cudart.Device, rep *report, cases []cudacheck.Case) error {
	fmt.Println("\n== comparison with the reference evaluator (float64), tolerance", cudacheck.Tol, "relative to each tensor's largest element")
	progs := make([]*cuda.Program, len(cases))
	for i, c := range cases {
		p, err := cudacheck.Compile(c, c.Batch)
		if err != nil {
			return err
		}
		progs[i] = p
	}
	warm(dev, progs)
	total, bad := 0, 0
	for i, c := range cases {
		ns := []int{c.Batch, c.Batch - 2}
		if c.Batch == 64 {
			ns = []int{64, 37}
		}
		if c.Name == "vggsmall" {
			ns = []int{64} // the float64 reference is slow at this size
		}
		for _, n := range ns {
			t := time.Now()
			results, err := cudacheck.Compare(dev, c, progs[i], n, 7)
			if err != nil {
				rep.failed = true
				bad++
				fmt.Printf("FAIL %-24s n=%-3d %v\n", c.Name, n, err)
				continue
			}
			worst := cudacheck.Result{}
			fails := 0
			for _, r := range results {
				total++
				if !r.OK() {
					fails++
					bad++
					fmt.Printf("  %s\n", r)
				}
				if r.Err/r.Tol > worst.Err/math.Max(worst.Tol, 1e-300) || worst.Key == "" {
					worst = r
				}
			}
			verdict := "ok  "
			if fails > 0 {
				verdict = "FAIL"
				rep.failed = true
			}
			fmt.Printf("%s %-24s n=%-3d %2d outputs, worst %s err %.1e (%.1fs)\n", verdict, c.Name, n, len(results), worst.Key, worst.Err, time.Since(t).Seconds())
		}
	}
	rep.summary = append(rep.summary, fmt.Sprintf("comparison: %d of %d outputs within tolerance over %d models", total-bad, total, len(cases)))
	return nil
}

func trainLeNet(dev *cudart.Device, rep *report, dir string, epochs, limit int) error {
	fmt.Println("\n== LeNet-5 on Fashion-MNIST, SGD lr 0.05 momentum 0.9 on the device, batch 64")
	var train, test *data.Dataset
	var err error
	source := "embedded subset"
	if dir != "" {
		train, test, source, err = data.FashionMNIST(dir)
	} else {
		train, test, err = data.FashionMNISTEmbedded()
	}
	if err != nil {
		return err
	}
	if limit > 0 && limit < train.N {
		train.N = limit
		train.Images = train.Images[:limit*train.ImageSize()]
		train.Labels = train.Labels[:limit]
	}
	if limit > 0 && limit < test.N {
		test.N = limit
		test.Images = test.Images[:limit*test.ImageSize()]
		test.Labels = test.Labels[:limit]
	}
	mean := train.MeanImage()
	train.Subtract(mean)
	test.Subtract(mean)
	var c cudacheck.Case
	for _, m := range cudacheck.Models() {
		if m.Name == "lenet5" {
			c = m
		}
	}
	prog, err := cudacheck.Compile(c, 64)
	if err != nil {
		return err
	}
	m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 1)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Printf("data: %s, %d training and %d test images\n", source, train.N, test.N)
	batcher := data.NewBatcher(train, 64, cnnc.NewRNG(1))
	x := make([]float32, 64*train.ImageSize())
	y := make([]int32, 64)
	for epoch := 1; epoch <= epochs; epoch++ {
		t := time.Now()
		images, sum, steps := 0, 0.0, 0
		for {
			n, ok := batcher.Next(x, y)
			if !ok {
				break
			}
			loss, err := m.Train(x[:n*train.ImageSize()], y[:n])
			if err != nil {
				return err
			}
			if err := m.SGDStep(0.05, 0.9, false, 0); err != nil {
				return err
			}
			if math.IsNaN(float64(loss)) {
				return fmt.Errorf("epoch %d, step %d: the loss is NaN", epoch, steps+1)
			}
			sum += float64(loss)
			images += n
			steps++
		}
		if err := m.Synchronize(); err != nil {
			return err
		}
		secs := time.Since(t).Seconds()
		acc := data.Evaluate(func(x []float32, n int) []float32 {
			logits, err := m.Infer(x[:n*test.ImageSize()])
			if err != nil {
				panic(err)
			}
			return logits
		}, test, 64)
		fmt.Printf("epoch %d: mean loss %.4f, test accuracy %.2f%%, %.0f images/s (%d steps in %.2fs, with the SGD update)\n",
			epoch, sum/float64(steps), 100*acc, float64(images)/secs, steps, secs)
		rep.measure("lenet5", 64, "epoch_images_per_s", float64(images)/secs, "img/s")
		rep.measure("lenet5", 64, "test_accuracy", 100*acc, "%")
		rep.summary = append(rep.summary, fmt.Sprintf("LeNet-5 epoch %d on %s: test accuracy %.2f%%, %.0f images/s", epoch, source, 100*acc, float64(images)/secs))
	}
	return nil
}

func bench(dev *cudart.Device, rep *report, budget time.Duration, cases []cudacheck.Case, batches []int, profile bool) error {
	fmt.Println("\n== speed: training step (forward, backward, SGD with momentum) and inference, random data")
	var progs []*cuda.Program
	type job struct {
		c     cudacheck.Case
		batch int
	}
	var jobs []job
	for i, c := range cases {
		p, err := cudacheck.Compile(c, batches[i])
		if err != nil {
			return err
		}
		progs = append(progs, p)
		jobs = append(jobs, job{c, batches[i]})
	}
	warm(dev, progs)
	for i, j := range jobs {
		for _, graphs := range []bool{true, false} {
			if j.c.TF32 && !graphs {
				continue // the launches are those of the float32 model
			}
			if err := benchModel(dev, rep, budget, progs[i], j.c, j.batch, graphs); err != nil {
				return err
			}
		}
	}
	if profile {
		for i, j := range jobs {
			if err := profileModel(dev, progs[i], j.c.Name, j.batch); err != nil {
				return err
			}
		}
	}
	return nil
}

// profileModel prints the kernels of a training step and of an inference
// call of one program, each timed on its own, the costliest first.
func profileModel(dev *cudart.Device, prog *cuda.Program, name string, batch int) error {
	m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 1)
	if err != nil {
		return err
	}
	defer m.Close()
	for _, train := range []bool{true, false} {
		times, err := m.Profile(train, batch, 20)
		if err != nil {
			return err
		}
		what := "inference"
		if train {
			what = "training step"
		}
		total := 0.0
		for _, t := range times {
			total += t.Millis
		}
		fmt.Printf("\n%s batch %d, %s: %d kernels, %.1f us in all, each timed alone (20 launches)\n", name, batch, what, len(times), 1000*total)
		slices.SortStableFunc(times, func(a, b cudart.KernelTime) int { return cmp.Compare(b.Millis, a.Millis) })
		for _, t := range times[:min(len(times), 12)] {
			fmt.Printf("  %8.1f us %5.1f%%  %-44s grid %dx%dx%d block %d, %d registers, %d bytes local\n", 1000*t.Millis, 100*t.Millis/total, t.Kernel,
				t.Grid.X, t.Grid.Y, t.Grid.Z, t.Block.X*t.Block.Y*t.Block.Z, t.Regs, t.LocalBytes)
		}
	}
	return nil
}

// benchModel times training steps and inference of one program with CUDA
// graphs or without (CNNC_CUDA_GRAPHS=0). A TF32 case is reported as the
// implementation cnnc-tf32 of its model.
func benchModel(dev *cudart.Device, rep *report, budget time.Duration, prog *cuda.Program, c cudacheck.Case, batch int, graphs bool) error {
	impl, name := "cnnc", c.Name
	if c.TF32 {
		impl, name = "cnnc-tf32", strings.TrimSuffix(name, "_tf32")
	}
	if !graphs {
		impl = "cnnc-nograph"
		os.Setenv("CNNC_CUDA_GRAPHS", "0")
		defer os.Unsetenv("CNNC_CUDA_GRAPHS")
	}
	m, err := cudart.NewModel(dev, prog.Source, prog.Plan, 1)
	if err != nil {
		return err
	}
	defer m.Close()
	size := 1
	for _, d := range prog.Plan.InputShape {
		size *= d
	}
	rng := cnnc.NewRNG(3)
	// The batch is written where the model's input is copied from, as a
	// loader that fills page-locked buffers would.
	x := make([]float32, batch*size)
	if s := m.Staging(); s != nil {
		x = s[:batch*size]
	}
	for k := range x {
		x[k] = float32(rng.NormFloat64())
	}
	y := make([]int32, batch)
	for k := range y {
		y[k] = int32(rng.Intn(prog.Plan.Classes))
	}
	step := func() error {
		if _, err := m.Train(x, y); err != nil {
			return err
		}
		return m.SGDStep(0.01, 0.9, false, 0)
	}
	infer := func() error { _, err := m.Infer(x); return err }
	trainRate, err := rate(step, m, budget)
	if err != nil {
		return err
	}
	inferRate, err := rate(infer, m, budget)
	if err != nil {
		return err
	}
	mode := "graphs"
	switch {
	case !graphs:
		mode = "no graphs (CNNC_CUDA_GRAPHS=0)"
	case !m.Graphs():
		mode = "graphs refused by the driver, kernel by kernel"
	}
	fmt.Printf("%-9s batch %3d: train %8.1f steps/s = %9.0f images/s; inference %9.0f images/s; %s\n",
		name, batch, trainRate, trainRate*float64(batch), inferRate*float64(batch), mode)
	rep.measureImpl(impl, name, batch, "train_images_per_s", trainRate*float64(batch), "img/s")
	rep.measureImpl(impl, name, batch, "infer_images_per_s", inferRate*float64(batch), "img/s")
	rep.summary = append(rep.summary, fmt.Sprintf("%s batch %d, %s: train %.0f img/s (%.1f steps/s), inference %.0f img/s",
		name, batch, mode, trainRate*float64(batch), trainRate, inferRate*float64(batch)))
	return nil
}

// rate returns calls of f per second: after a warm-up, as many calls as
// fit in budget, the device synchronised at the end.
func rate(f func() error, m *cudart.Model, budget time.Duration) (float64, error) {
	for range 5 {
		if err := f(); err != nil {
			return 0, err
		}
	}
	if err := m.Synchronize(); err != nil {
		return 0, err
	}
	t := time.Now()
	calls := 0
	for time.Since(t) < budget || calls < 3 {
		if err := f(); err != nil {
			return 0, err
		}
		calls++
	}
	if err := m.Synchronize(); err != nil {
		return 0, err
	}
	return float64(calls) / time.Since(t).Seconds(), nil
}
