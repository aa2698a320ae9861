package gocode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
	"github.com/stretchr/testify/require"
)

// convLayers are the convolutions of LeNet-5 and of the VGG-style net,
// at the training batch of 64.
var convLayers = []struct {
	name               string
	c, h, w, o, k, pad int
}{
	{"lenet5-conv1", 1, 28, 28, 6, 5, 2},
	{"lenet5-conv2", 6, 14, 14, 16, 5, 0},
	{"vggsmall-conv1", 3, 32, 32, 32, 3, 1},
	{"vggsmall-conv2", 32, 32, 32, 32, 3, 1},
	{"vggsmall-conv3", 32, 16, 16, 64, 3, 1},
	{"vggsmall-conv4", 64, 16, 16, 64, 3, 1},
}

// BenchmarkConvLayers times each convolution of LeNet-5 and the
// VGG-style net alone, forward (a batch of Predict) and forward plus
// backward (TrainStep, which adds the gradients of the input, but not for
// a first layer, and of the weight): each layer is compiled into a model
// of its own, conv (with bias and ReLU) then global average pooling into
// the loss, whose other kernels are small beside the convolution. It
// reports the medians of layerRounds runs of the generated benchmarks, as
// milliseconds and as GFLOP/s of the convolution's arithmetic (2 flops a
// multiply-add; the backward does twice the forward's, once without an
// input gradient). Run it with
//
//	go test ./codegen/gocode -run '^$' -bench ConvLayers -benchtime 1x
func BenchmarkConvLayers(b *testing.B) {
	const layerRounds = 3
	root := benchRoot(b)
	dirs := make([]string, len(convLayers))
	for i, l := range convLayers {
		g := convLayerGraph(l.name, l.c, l.h, l.w, l.o, l.k, l.pad, i == 0 || l.name == "vggsmall-conv1")
		train, err := passes.Train.Run(g, passes.Options{})
		require.NoError(b, err)
		infer, err := passes.Infer.Run(g, passes.Options{})
		require.NoError(b, err)
		dirs[i] = writeBenchPackage(b, root, strings.ReplaceAll(l.name, "-", ""), train, infer)
	}
	medians := make([]map[string][]float64, len(convLayers))
	for i := range medians {
		medians[i] = map[string][]float64{}
	}
	for range layerRounds {
		for i, dir := range dirs {
			runMedians(b, dir, "PredictBatch|TrainStep", medians[i])
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-15s %-22s %10s %9s  %-16s %13s %9s  %s\n", "layer", "shape", "fwd ms", "GFLOP/s", "round medians", "fwd+bwd ms", "GFLOP/s", "round medians")
	for i, l := range convLayers {
		first := i == 0 || l.name == "vggsmall-conv1"
		oh, ow := l.h+2*l.pad-l.k+1, l.w+2*l.pad-l.k+1 // stride 1
		flops := 2.0 * 64 * float64(l.o*l.c*l.k*l.k*oh*ow)
		bwd := 2.0
		if first {
			bwd = 1
		}
		f, frounds := median(medians[i]["PredictBatch"], 1e6)
		t, trounds := median(medians[i]["TrainStep"], 1e6)
		shape := fmt.Sprintf("%dx%dx%d->%d k%d p%d", l.c, l.h, l.w, l.o, l.k, l.pad)
		fmt.Fprintf(&report, "%-15s %-22s %10.3f %9.1f  %-16s %13.3f %9.1f  %s\n", l.name, shape,
			f/1e6, flops/f, frounds, t/1e6, (1+bwd)*flops/t, trounds)
		b.ReportMetric(f, l.name+"-fwd-ns")
		b.ReportMetric(t, l.name+"-fwdbwd-ns")
	}
	b.Logf("convolutions at batch 64 (forward: Predict of a batch; forward+backward: TrainStep):\n%s", report.String())
}

// convLayerGraph is one convolution with bias and ReLU, averaged over its
// output's (square) pixels into o logits. A first layer's input gradient
// is never computed, as in a network; another layer's input is a
// batch-norm's output, so that the training graph computes it, at the
// cost of a few element-wise passes.
func convLayerGraph(name string, c, h, w, o, k, pad int, first bool) *ir.Graph {
	b := ir.NewBuilder(strings.ReplaceAll(name, "-", ""), 64)
	x := b.Input("x", c, h, w)
	y := b.Labels("y", o)
	if !first {
		x = b.BatchNorm("pre", x, c)
	}
	z := b.ReLU(b.Conv2D("conv", x, c, o, k, ir.Pad(pad)))
	logits := b.Flatten(b.AvgPool(z, z.Shape[2], ir.Stride(z.Shape[2])))
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
