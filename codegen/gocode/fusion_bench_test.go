package gocode

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/vggsmall"
	"github.com/cnnc/cnnc/passes"
	"github.com/stretchr/testify/require"
)

// fusionRounds is how many times BenchmarkFusion runs every variant's
// benchmark, the variants taking turns so that a change in the machine's
// load hits them alike.
const fusionRounds = 3

// BenchmarkFusion measures what the fusions buy: for LeNet-5 with
// batch-norm and the small VGG, it generates the package twice, with the
// pipelines as they are and without their fusion passes (passes.Fusions
// and passes.TrainFusions), and reports for each the kernels per
// inference and per training step, the median latency of Predict on one
// sample and the median time of a TrainStep on a full batch: the medians
// over every call of fusionRounds runs of the generated
// BenchmarkPredict1Median and BenchmarkTrainStepMedian (the median of the
// rounds' medians). Run it with
//
//	go test ./codegen/gocode -run '^$' -bench Fusion -benchtime 1x
//
// (one run of it generates, builds and benchmarks four packages).
func BenchmarkFusion(b *testing.B) {
	type variant struct {
		model, name   string
		graph         func() *ir.Graph
		train, infer  passes.Pipeline
		pkg, dir      string
		stats, tstats passes.GraphStats
		medians       map[string][]float64 // by benchmark
		batch         int
	}
	var vs []*variant
	for _, m := range []struct {
		name  string
		graph func() *ir.Graph
	}{{"lenet5bn", lenet5.LeNet5BN}, {"vggsmall", vggsmall.VGGSmall}} {
		vs = append(vs,
			&variant{model: m.name, name: "fused", graph: m.graph, train: passes.Train, infer: passes.Infer},
			&variant{model: m.name, name: "unfused", graph: m.graph, train: passes.Train.Without(passes.TrainFusions...), infer: passes.Infer.Without(passes.Fusions...)})
	}
	root, err := os.MkdirTemp("testdata", "bench-")
	require.NoError(b, err)
	b.Cleanup(func() { os.RemoveAll(root) })
	var pkgs []string
	for _, v := range vs {
		g := v.graph()
		train, err := v.train.Run(g, passes.Options{})
		require.NoError(b, err)
		infer, err := v.infer.Run(g, passes.Options{})
		require.NoError(b, err)
		v.stats, v.tstats = passes.Stats(infer), passes.Stats(train)
		v.medians, v.batch = map[string][]float64{}, g.Batch
		v.pkg = v.model + v.name
		v.dir = filepath.Join(root, v.pkg)
		files, err := Generate(train, infer, Config{
			Package:    v.pkg,
			ImportPath: modulePath + "/" + filepath.ToSlash(v.dir),
			Source:     "codegen/gocode/fusion_bench_test.go:" + v.pkg,
		})
		require.NoError(b, err)
		files["median_test.go"] = []byte(strings.ReplaceAll(medianBench, "PKG", v.pkg))
		for name, src := range files {
			p := filepath.Join(v.dir, name)
			require.NoError(b, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(b, os.WriteFile(p, src, 0o644))
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(v.dir))
	}
	line := regexp.MustCompile(`^Benchmark(Predict1|TrainStep)Median\S*\s+\d+\s+\S+ ns/op\s+(\S+) median-ns/op`)
	for range fusionRounds {
		for _, v := range vs {
			// One package at a time: go test may run test binaries in
			// parallel, and they would compete for the cores.
			cmd := exec.Command("go", "test", "-count=1", "-run=^$", "-bench=^Benchmark(Predict1|TrainStep)Median$", "./"+filepath.ToSlash(v.dir))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(b, cmd.Run(), "benchmark of %s:\n%s", v.pkg, out.String())
			for s := bufio.NewScanner(&out); s.Scan(); {
				if m := line.FindStringSubmatch(s.Text()); m != nil {
					ns, err := strconv.ParseFloat(m[2], 64)
					require.NoError(b, err)
					v.medians[m[1]] = append(v.medians[m[1]], ns)
				}
			}
			require.Len(b, v.medians, 2, "benchmark results missing for %s:\n%s", v.pkg, out.String())
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-9s %-8s %8s %14s %12s  %-16s %8s %14s %12s  %s\n", "model", "variant",
		"kernels", "arena floats", "predict1 µs", "round medians", "kernels", "arena floats", "train ms", "round medians")
	for _, v := range vs {
		med := func(bench string, unit float64) (float64, string) {
			ms := v.medians[bench]
			slices.Sort(ms)
			rounds := make([]string, len(ms))
			for i, m := range ms {
				rounds[i] = fmt.Sprintf("%.1f", m/unit)
			}
			return ms[len(ms)/2], strings.Join(rounds, " ")
		}
		p, prounds := med("Predict1", 1e3)
		t, trounds := med("TrainStep", 1e6)
		fmt.Fprintf(&report, "%-9s %-8s %8d %14d %12.1f  %-16s %8d %14d %12.2f  %s\n", v.model, v.name,
			v.stats.Kernels, v.stats.Arena, p/1e3, prounds, v.tstats.Kernels, v.tstats.Arena, t/1e6, trounds)
		b.ReportMetric(p, v.pkg+"-ns/predict1")
		b.ReportMetric(t, v.pkg+"-ns/trainstep")
	}
	b.Logf("batch-1 Predict and batch-%d TrainStep, fused (passes.Infer, passes.Train) and unfused (without %s):\n%s",
		vs[0].batch, strings.Join(append(passes.Fusions, passes.TrainFusions...), ", "), report.String())
}

// medianBench is the benchmark written into each package BenchmarkFusion
// generates: it times every call of Predict on one sample and reports the
// median, less sensitive than the mean to other work on the machine.
const medianBench = `package PKG

import (
	"slices"
	"testing"
	"time"
)

func BenchmarkPredict1Median(b *testing.B) {
	m := New()
	x := make([]float32, SampleSize)
	for i := range x {
		x[i] = float32(i%17)/8 - 1
	}
	m.Predict(x)
	d := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t := time.Now()
		m.Predict(x)
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "median-ns/op")
}

func BenchmarkTrainStepMedian(b *testing.B) {
	m := New()
	x := make([]float32, Batch*SampleSize)
	for i := range x {
		x[i] = float32(i%17)/8 - 1
	}
	labels := make([]int32, Batch)
	for i := range labels {
		labels[i] = int32(i % Classes)
	}
	m.TrainStep(x, labels)
	d := make([]time.Duration, 0, 1<<12)
	for b.Loop() {
		t := time.Now()
		m.TrainStep(x, labels)
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "median-ns/op")
}
`
