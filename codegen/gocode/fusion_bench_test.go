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

// BenchmarkFusion measures what the inference fusions buy: for LeNet-5
// with batch-norm and the small VGG, it generates the package twice, with
// the inference pipeline as it is and without its fusion passes
// (passes.Fusions), and reports for each the kernels per inference and the
// median latency of Predict on one sample, the median over every call of
// fusionRounds runs of the generated BenchmarkPredict1Median (the median
// of the rounds' medians). Run it with
//
//	go test ./codegen/gocode -run '^$' -bench Fusion -benchtime 1x
//
// (one run of it generates, builds and benchmarks four packages).
func BenchmarkFusion(b *testing.B) {
	type variant struct {
		model, name string
		graph       func() *ir.Graph
		infer       passes.Pipeline
		pkg, dir    string
		stats       passes.GraphStats
		medians     []float64
	}
	var vs []*variant
	for _, m := range []struct {
		name  string
		graph func() *ir.Graph
	}{{"lenet5bn", lenet5.LeNet5BN}, {"vggsmall", vggsmall.VGGSmall}} {
		vs = append(vs,
			&variant{model: m.name, name: "fused", graph: m.graph, infer: passes.Infer},
			&variant{model: m.name, name: "unfused", graph: m.graph, infer: passes.Infer.Without(passes.Fusions...)})
	}
	root, err := os.MkdirTemp("testdata", "bench-")
	require.NoError(b, err)
	b.Cleanup(func() { os.RemoveAll(root) })
	var pkgs []string
	for _, v := range vs {
		g := v.graph()
		train, err := passes.Train.Run(g, passes.Options{})
		require.NoError(b, err)
		infer, err := v.infer.Run(g, passes.Options{})
		require.NoError(b, err)
		v.stats = passes.Stats(infer)
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
	line := regexp.MustCompile(`^BenchmarkPredict1Median\S*\s+\d+\s+\S+ ns/op\s+(\S+) median-ns/op`)
	for range fusionRounds {
		for _, v := range vs {
			// One package at a time: go test may run test binaries in
			// parallel, and they would compete for the cores.
			cmd := exec.Command("go", "test", "-count=1", "-run=^$", "-bench=^BenchmarkPredict1Median$", "./"+filepath.ToSlash(v.dir))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(b, cmd.Run(), "benchmark of %s:\n%s", v.pkg, out.String())
			found := false
			for s := bufio.NewScanner(&out); s.Scan(); {
				if m := line.FindStringSubmatch(s.Text()); m != nil {
					ns, err := strconv.ParseFloat(m[1], 64)
					require.NoError(b, err)
					v.medians = append(v.medians, ns)
					found = true
				}
			}
			require.True(b, found, "no BenchmarkPredict1Median result for %s:\n%s", v.pkg, out.String())
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-9s %-8s %8s %14s %14s  %s\n", "model", "variant", "kernels", "arena floats", "median µs", "round medians µs")
	for _, v := range vs {
		slices.Sort(v.medians)
		med := v.medians[len(v.medians)/2]
		rounds := make([]string, len(v.medians))
		for i, m := range v.medians {
			rounds[i] = fmt.Sprintf("%.1f", m/1e3)
		}
		fmt.Fprintf(&report, "%-9s %-8s %8d %14d %14.1f  %s\n", v.model, v.name, v.stats.Kernels, v.stats.Arena, med/1e3, strings.Join(rounds, " "))
		b.ReportMetric(med, v.pkg+"-ns/predict1")
		b.ReportMetric(float64(v.stats.Kernels), v.pkg+"-kernels")
	}
	b.Logf("batch-1 Predict, fused (passes.Infer) and unfused (without %s):\n%s", strings.Join(passes.Fusions, ", "), report.String())
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
`
