package gocode

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/stretchr/testify/require"
)

// The benchmarks that compare generated packages write each into a
// directory under testdata, with medianBench beside it, and run its
// benchmarks in a child go test, one package at a time (go test may run
// test binaries in parallel, and they would compete for the cores).

// writeBenchPackage generates the package of train and infer as pkg under
// root, with medianBench, and returns its directory.
func writeBenchPackage(b *testing.B, root, pkg string, train, infer *ir.Graph) string {
	dir := filepath.Join(root, pkg)
	files, err := Generate(train, infer, Config{
		Package:    pkg,
		ImportPath: modulePath + "/" + filepath.ToSlash(dir),
		Source:     "codegen/gocode benchmark:" + pkg,
	})
	require.NoError(b, err)
	files["median_test.go"] = []byte(strings.ReplaceAll(medianBench, "PKG", pkg))
	for name, src := range files {
		p := filepath.Join(dir, name)
		require.NoError(b, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(b, os.WriteFile(p, src, 0o644))
	}
	return dir
}

// benchRoot returns a fresh directory under testdata that the benchmark
// removes when it ends.
func benchRoot(b *testing.B) string {
	root, err := os.MkdirTemp("testdata", "bench-")
	require.NoError(b, err)
	b.Cleanup(func() { os.RemoveAll(root) })
	return root
}

var medianLine = regexp.MustCompile(`^Benchmark(\w+)Median\S*\s+\d+\s+\S+ ns/op\s+(\S+) median-ns/op`)

// runMedians runs the medianBench benchmarks of the package in dir whose
// names match (such as "Predict1|TrainStep") and adds each median, in ns,
// to medians under the benchmark's name without Benchmark and Median.
func runMedians(b *testing.B, dir, names string, medians map[string][]float64) {
	cmd := exec.Command("go", "test", "-count=1", "-run=^$", "-bench=^Benchmark("+names+")Median$", "./"+filepath.ToSlash(dir))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(b, cmd.Run(), "benchmark of %s:\n%s", dir, out.String())
	found := 0
	for s := bufio.NewScanner(&out); s.Scan(); {
		if m := medianLine.FindStringSubmatch(s.Text()); m != nil {
			ns, err := strconv.ParseFloat(m[2], 64)
			require.NoError(b, err)
			medians[m[1]] = append(medians[m[1]], ns)
			found++
		}
	}
	require.Equal(b, len(strings.Split(names, "|")), found, "benchmark results missing for %s:\n%s", dir, out.String())
}

// median returns the median of xs and the values, divided by unit, as
// text.
func median(xs []float64, unit float64) (float64, string) {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x/unit, 'f', 1, 64)
	}
	return xs[len(xs)/2], strings.Join(parts, " ")
}

// medianBench is the benchmark written into each package a benchmark
// generates: it times every call and reports the median, less sensitive
// than the mean to other work on the machine. PredictBatch runs a full
// batch, Predict1 one sample.
const medianBench = `package PKG

import (
	"slices"
	"testing"
	"time"
)

func input() ([]float32, []int32) {
	x := make([]float32, Batch*SampleSize)
	for i := range x {
		x[i] = float32(i%17)/8 - 1
	}
	labels := make([]int32, Batch)
	for i := range labels {
		labels[i] = int32(i % Classes)
	}
	return x, labels
}

func timeCalls(b *testing.B, call func()) {
	call()
	d := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t := time.Now()
		call()
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "median-ns/op")
}

func BenchmarkPredict1Median(b *testing.B) {
	m := New()
	x, _ := input()
	timeCalls(b, func() { m.Predict(x[:SampleSize]) })
}

func BenchmarkPredictBatchMedian(b *testing.B) {
	m := New()
	x, _ := input()
	timeCalls(b, func() { m.Predict(x) })
}

func BenchmarkTrainStepMedian(b *testing.B) {
	m := New()
	x, labels := input()
	timeCalls(b, func() { m.TrainStep(x, labels) })
}
`
