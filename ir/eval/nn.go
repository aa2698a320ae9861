package eval

import (
	"fmt"
	"math"

	"github.com/cnnc/cnnc/ir"
)

// linear is OpLinear: y[n,o] = b[o] + the sum over f of x[n,f]*w[o,f].
// b may be nil.
func linear(x, w, b *Tensor, shape ir.Shape) *Tensor {
	y := NewTensor(shape)
	N, F := x.Shape[0], x.Shape[1]
	O := w.Shape[0]
	for n := range N {
		for o := range O {
			sum := 0.0
			for f := range F {
				sum += x.Data[n*F+f] * w.Data[o*F+f]
			}
			if b != nil {
				sum = b.Data[o] + sum
			}
			y.Data[n*O+o] = sum
		}
	}
	return y
}

// linearBackwardData is OpLinearBackwardData: dx[n,f] = the sum over o of
// dy[n,o]*w[o,f].
func linearBackwardData(dy, w *Tensor, shape ir.Shape) *Tensor {
	dx := NewTensor(shape)
	N, O := dy.Shape[0], dy.Shape[1]
	F := w.Shape[1]
	for n := range N {
		for f := range F {
			sum := 0.0
			for o := range O {
				sum += dy.Data[n*O+o] * w.Data[o*F+f]
			}
			dx.Data[n*F+f] = sum
		}
	}
	return dx
}

// linearBackwardWeight is OpLinearBackwardWeight: dw[o,f] = the sum over n
// of dy[n,o]*x[n,f].
func linearBackwardWeight(x, dy *Tensor, shape ir.Shape) *Tensor {
	dw := NewTensor(shape)
	N, F := x.Shape[0], x.Shape[1]
	O := dy.Shape[1]
	for o := range O {
		for f := range F {
			sum := 0.0
			for n := range N {
				sum += dy.Data[n*O+o] * x.Data[n*F+f]
			}
			dw.Data[o*F+f] = sum
		}
	}
	return dw
}

// batchStats returns the per-channel mean and biased variance of x
// ([N, C] or [N, C, H, W]) over its M = N*H*W elements per channel, in two
// passes.
func batchStats(x *Tensor) (mean, variance []float64, m int) {
	N, C, S := channelDims(x.Shape)
	m = N * S
	mean = make([]float64, C)
	variance = make([]float64, C)
	for c := range C {
		sum := 0.0
		for n := range N {
			for s := range S {
				sum += x.Data[(n*C+c)*S+s]
			}
		}
		mu := sum / float64(m)
		sq := 0.0
		for n := range N {
			for s := range S {
				d := x.Data[(n*C+c)*S+s] - mu
				sq += d * d
			}
		}
		mean[c], variance[c] = mu, sq/float64(m)
	}
	return mean, variance, m
}

// normalize returns (x - mean[c]) / sqrt(variance[c] + eps) * gamma[c] +
// beta[c] for every element of x in channel c.
func normalize(x *Tensor, mean, variance []float64, gamma, beta *Tensor, eps float64) *Tensor {
	y := NewTensor(x.Shape)
	N, C, S := channelDims(x.Shape)
	for n := range N {
		for c := range C {
			sd := math.Sqrt(variance[c] + eps)
			for s := range S {
				i := (n*C+c)*S + s
				y.Data[i] = (x.Data[i]-mean[c])/sd*gamma.Data[c] + beta.Data[c]
			}
		}
	}
	return y
}

// batchNorm is OpBatchNorm: normalisation with the batch's statistics.
func batchNorm(x, gamma, beta *Tensor, eps float64) *Tensor {
	mean, variance, _ := batchStats(x)
	return normalize(x, mean, variance, gamma, beta, eps)
}

// batchNormInfer is OpBatchNormInfer: normalisation with the running
// statistics.
func batchNormInfer(x, gamma, beta, runMean, runVar *Tensor, eps float64) *Tensor {
	return normalize(x, runMean.Data, runVar.Data, gamma, beta, eps)
}

// runningMean is OpRunningMean: (1-momentum)*old + momentum*mean(x).
func runningMean(x, old *Tensor, momentum float64) *Tensor {
	mean, _, _ := batchStats(x)
	y := NewTensor(old.Shape)
	for c := range y.Data {
		y.Data[c] = (1-momentum)*old.Data[c] + momentum*mean[c]
	}
	return y
}

// runningVar is OpRunningVar: (1-momentum)*old + momentum*var(x)*M/(M-1),
// the unbiased batch variance.
func runningVar(x, old *Tensor, momentum float64) *Tensor {
	_, variance, m := batchStats(x)
	y := NewTensor(old.Shape)
	for c := range y.Data {
		y.Data[c] = (1-momentum)*old.Data[c] + momentum*variance[c]*float64(m)/float64(m-1)
	}
	return y
}

// batchNormBackward is OpBatchNormBackward, with the statistics
// recomputed from x.
func batchNormBackward(x, gamma, dy *Tensor, eps float64) *Tensor {
	mean, variance, _ := batchStats(x)
	return bnBackward(x, gamma, dy, mean, inverseStd(variance, eps))
}

// inverseStd returns 1/sqrt(variance[c] + eps) per channel.
func inverseStd(variance []float64, eps float64) []float64 {
	istd := make([]float64, len(variance))
	for c, v := range variance {
		istd[c] = 1 / math.Sqrt(v+eps)
	}
	return istd
}

// bnBackward is the gradient of batch-norm given its statistics: with
// xhat = (x-mean)*istd over M elements per channel,
// dx = gamma*istd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)), the sums per
// channel.
func bnBackward(x, gamma, dy *Tensor, mean, istd []float64) *Tensor {
	sumDy, sumDyXhat := bnSums(x, dy, mean, istd)
	dx := NewTensor(x.Shape)
	N, C, S := channelDims(x.Shape)
	M := float64(N * S)
	for n := range N {
		for c := range C {
			for s := range S {
				i := (n*C+c)*S + s
				xhat := (x.Data[i] - mean[c]) * istd[c]
				dx.Data[i] = gamma.Data[c] * istd[c] / M * (M*dy.Data[i] - sumDy[c] - xhat*sumDyXhat[c])
			}
		}
	}
	return dx
}

// batchNormBackwardGamma is OpBatchNormBackwardGamma: the sum of dy*xhat
// per channel.
func batchNormBackwardGamma(x, dy *Tensor, eps float64) *Tensor {
	mean, variance, _ := batchStats(x)
	_, sumDyXhat := bnSums(x, dy, mean, inverseStd(variance, eps))
	return &Tensor{Shape: ir.Shape{x.Shape[1]}, Data: sumDyXhat}
}

// bnSums returns the per-channel sums of dy and of dy*xhat, in index order.
func bnSums(x, dy *Tensor, mean, istd []float64) (sumDy, sumDyXhat []float64) {
	N, C, S := channelDims(x.Shape)
	sumDy = make([]float64, C)
	sumDyXhat = make([]float64, C)
	for c := range C {
		for n := range N {
			for s := range S {
				i := (n*C+c)*S + s
				sumDy[c] += dy.Data[i]
				sumDyXhat[c] += dy.Data[i] * (x.Data[i] - mean[c]) * istd[c]
			}
		}
	}
	return sumDy, sumDyXhat
}

// convBNReLU is OpConv2DBNReLU: its five results.
func convBNReLU(args []*Tensor, a ir.Attrs, shape ir.Shape) []*Tensor {
	x, w, gamma, beta, runMean, runVar := args[0], args[1], args[2], args[3], args[4], args[5]
	z := conv2D(x, w, nil, a, shape)
	mean, variance, _ := batchStats(z)
	istd := inverseStd(variance, a.Eps)
	stats := &Tensor{Shape: ir.Shape{2, len(mean)}, Data: append(append([]float64(nil), mean...), istd...)}
	y := relu(normalize(z, mean, variance, gamma, beta, a.Eps))
	return []*Tensor{y, z, stats, runningMean(z, runMean, a.Momentum), runningVar(z, runVar, a.Momentum)}
}

// convBNReLUBackward is OpConv2DBNReLUBackward: its four results, from the
// statistics the forward saved.
func convBNReLUBackward(args []*Tensor, a ir.Attrs) []*Tensor {
	x, w, gamma, y, z, stats, dy := args[0], args[1], args[2], args[3], args[4], args[5], args[6]
	C := gamma.Shape[0]
	mean, istd := stats.Data[:C], stats.Data[C:]
	g := reluMask(y, dy)
	sumG, sumGXhat := bnSums(z, g, mean, istd)
	dz := bnBackward(z, gamma, g, mean, istd)
	return []*Tensor{
		{Shape: ir.Shape{C}, Data: sumGXhat},
		{Shape: ir.Shape{C}, Data: sumG},
		conv2DBackwardFilter(x, dz, a, w.Shape),
		conv2DBackwardData(dz, w, a, x.Shape),
	}
}

// dropout is OpDropout, and OpDropoutBackward applied to dy: element i is
// kept iff Uniform01(Seed ^ RunSeed, Step, i) < Keep; a kept element is
// divided by Keep when the dropout is inverted, and dropped elements are 0.
func dropout(x *Tensor, a ir.Attrs, opts Options) *Tensor {
	y := NewTensor(x.Shape)
	for i, v := range x.Data {
		switch {
		case !dropoutKeeps(a, opts, i):
			y.Data[i] = 0
		case a.Classic:
			y.Data[i] = v
		default:
			y.Data[i] = v / a.Keep
		}
	}
	return y
}

// softmax is OpSoftmax over axis 1 of [N, K], computed as
// exp(x - max) / sum(exp(x - max)) so that no exponential overflows.
func softmax(x *Tensor) *Tensor {
	y := NewTensor(x.Shape)
	N, K := x.Shape[0], x.Shape[1]
	for n := range N {
		row := x.Data[n*K : (n+1)*K]
		m := rowMax(row)
		sum := 0.0
		for k, v := range row {
			e := math.Exp(v - m)
			y.Data[n*K+k] = e
			sum += e
		}
		for k := range K {
			y.Data[n*K+k] /= sum
		}
	}
	return y
}

// softmaxBackward is OpSoftmaxBackward:
// dx[n,k] = y[n,k] * (dy[n,k] - sum over j of dy[n,j]*y[n,j]).
func softmaxBackward(y, dy *Tensor) *Tensor {
	dx := NewTensor(y.Shape)
	N, K := y.Shape[0], y.Shape[1]
	for n := range N {
		dot := 0.0
		for j := range K {
			dot += dy.Data[n*K+j] * y.Data[n*K+j]
		}
		for k := range K {
			dx.Data[n*K+k] = y.Data[n*K+k] * (dy.Data[n*K+k] - dot)
		}
	}
	return dx
}

func rowMax(row []float64) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, v)
	}
	return m
}

// logSumExp returns log(sum(exp(row))), computed as
// max + log(sum(exp(row - max))).
func logSumExp(row []float64) float64 {
	m := rowMax(row)
	if math.IsInf(m, 0) {
		return m
	}
	sum := 0.0
	for _, v := range row {
		sum += math.Exp(v - m)
	}
	return m + math.Log(sum)
}

// label returns sample n's class from a labels tensor, checking it is a
// class of k.
func label(labels *Tensor, n, k int) (int, error) {
	v := labels.Data[n]
	if v != math.Trunc(v) || v < 0 || v >= float64(k) {
		return 0, fmt.Errorf("label %v of sample %d is not a class in [0, %d)", v, n, k)
	}
	return int(v), nil
}

// softmaxCrossEntropy is OpSoftmaxCrossEntropy: the mean over n of
// logsumexp(x[n]) - x[n, label n].
func softmaxCrossEntropy(x, labels *Tensor) (*Tensor, error) {
	N, K := x.Shape[0], x.Shape[1]
	sum := 0.0
	for n := range N {
		y, err := label(labels, n, K)
		if err != nil {
			return nil, err
		}
		row := x.Data[n*K : (n+1)*K]
		sum += logSumExp(row) - row[y]
	}
	return scalar(sum / float64(N)), nil
}

// softmaxCrossEntropyBackward is OpSoftmaxCrossEntropyBackward:
// dx[n,k] = dloss * (softmax(x)[n,k] - [k == label n]) / N.
func softmaxCrossEntropyBackward(x, labels *Tensor, dloss float64) (*Tensor, error) {
	N, K := x.Shape[0], x.Shape[1]
	dx := softmax(x)
	for n := range N {
		y, err := label(labels, n, K)
		if err != nil {
			return nil, err
		}
		for k := range K {
			p := dx.Data[n*K+k]
			if k == y {
				p--
			}
			dx.Data[n*K+k] = dloss * p / float64(N)
		}
	}
	return dx, nil
}

// svmLoss is OpSVMLoss: the mean over n of the sum over j != y of
// max(0, s[n,j] - s[n,y] + margin).
func svmLoss(s, labels *Tensor, margin float64) (*Tensor, error) {
	N, K := s.Shape[0], s.Shape[1]
	sum := 0.0
	for n := range N {
		y, err := label(labels, n, K)
		if err != nil {
			return nil, err
		}
		for j := range K {
			if j != y {
				sum += math.Max(0, s.Data[n*K+j]-s.Data[n*K+y]+margin)
			}
		}
	}
	return scalar(sum / float64(N)), nil
}

// svmLossBackward is OpSVMLossBackward: for every j != y whose hinge is
// active (s_j - s_y + margin > 0), dx[n,j] += dloss/N and
// dx[n,y] -= dloss/N.
func svmLossBackward(s, labels *Tensor, dloss, margin float64) (*Tensor, error) {
	dx := NewTensor(s.Shape)
	N, K := s.Shape[0], s.Shape[1]
	d := dloss / float64(N)
	for n := range N {
		y, err := label(labels, n, K)
		if err != nil {
			return nil, err
		}
		for j := range K {
			if j != y && s.Data[n*K+j]-s.Data[n*K+y]+margin > 0 {
				dx.Data[n*K+j] += d
				dx.Data[n*K+y] -= d
			}
		}
	}
	return dx, nil
}

func relu(x *Tensor) *Tensor {
	return mapElems(x, func(v float64) float64 { return math.Max(v, 0) })
}

// foldBNWeight scales each output channel of w by gamma/sqrt(var+eps).
func foldBNWeight(w, gamma, variance *Tensor, eps float64) *Tensor {
	out := w.Clone()
	per := len(w.Data) / w.Shape[0]
	for o := range w.Shape[0] {
		s := gamma.Data[o] / math.Sqrt(variance.Data[o]+eps)
		for i := range per {
			out.Data[o*per+i] *= s
		}
	}
	return out
}

// foldBNBias returns (b - mean)*gamma/sqrt(var+eps) + beta; b is 0 if nil.
func foldBNBias(gamma, beta, mean, variance, b *Tensor, eps float64) *Tensor {
	out := NewTensor(gamma.Shape)
	for o := range out.Data {
		bias := 0.0
		if b != nil {
			bias = b.Data[o]
		}
		out.Data[o] = (bias-mean.Data[o])*gamma.Data[o]/math.Sqrt(variance.Data[o]+eps) + beta.Data[o]
	}
	return out
}

// reluMask returns dy where y > 0 and 0 elsewhere: the gradient through a
// ReLU whose output is y.
func reluMask(y, dy *Tensor) *Tensor {
	out := NewTensor(dy.Shape)
	for i, v := range y.Data {
		if v > 0 {
			out.Data[i] = dy.Data[i]
		}
	}
	return out
}
