package gocode

import (
	"fmt"
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
		dir           string
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
	root := benchRoot(b)
	for _, v := range vs {
		g := v.graph()
		train, err := v.train.Run(g, passes.Options{})
		require.NoError(b, err)
		infer, err := v.infer.Run(g, passes.Options{})
		require.NoError(b, err)
		v.stats, v.tstats = passes.Stats(infer), passes.Stats(train)
		v.medians, v.batch = map[string][]float64{}, g.Batch
		v.dir = writeBenchPackage(b, root, v.model+v.name, train, infer)
	}
	for range fusionRounds {
		for _, v := range vs {
			runMedians(b, v.dir, "Predict1|TrainStep", v.medians)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-9s %-8s %8s %14s %12s  %-16s %8s %14s %12s  %s\n", "model", "variant",
		"kernels", "arena floats", "predict1 µs", "round medians", "kernels", "arena floats", "train ms", "round medians")
	for _, v := range vs {
		p, prounds := median(v.medians["Predict1"], 1e3)
		t, trounds := median(v.medians["TrainStep"], 1e6)
		fmt.Fprintf(&report, "%-9s %-8s %8d %14d %12.1f  %-16s %8d %14d %12.2f  %s\n", v.model, v.name,
			v.stats.Kernels, v.stats.Arena, p/1e3, prounds, v.tstats.Kernels, v.tstats.Arena, t/1e6, trounds)
		b.ReportMetric(p, v.model+v.name+"-ns/predict1")
		b.ReportMetric(t, v.model+v.name+"-ns/trainstep")
	}
	b.Logf("batch-1 Predict and batch-%d TrainStep, fused (passes.Infer, passes.Train) and unfused (without %s):\n%s",
		vs[0].batch, strings.Join(append(passes.Fusions, passes.TrainFusions...), ", "), report.String())
}
