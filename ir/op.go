package ir

// An Op is the operation a node performs. Its meaning is given beside its
// entry in opTable; the reference evaluator (package ir/eval) implements
// exactly that meaning.
type Op uint8

// The ops. Keep in the same order as opTable.
const (
	OpInvalid Op = iota

	// Leaves.
	OpInput
	OpLabels
	OpParam
	OpBuffer
	OpConst

	// Forward ops.
	OpConv2D
	OpMaxPool
	OpAvgPool
	OpLinear
	OpReshape
	OpReLU
	OpLeakyReLU
	OpTanh
	OpSigmoid
	OpBatchNorm
	OpBatchNormInfer
	OpRunningMean
	OpRunningVar
	OpDropout
	OpAdd
	OpScale
	OpSoftmax
	OpSoftmaxCrossEntropy
	OpSVMLoss
	OpL2
	OpL1
	OpElasticNet

	// Fused and folded ops, made by the inference passes.
	OpConv2DReLU
	OpConv2DTanh
	OpLinearReLU
	OpLinearTanh
	OpFoldBNWeight
	OpFoldBNBias
	OpBatchNormReLU
	OpBatchNormReLUBackward
	OpBatchNormReLUBackwardGamma
	OpReLUBiasGrad
	OpConv2DBNReLU
	OpConv2DBNReLUBackward
	OpMaxPoolReLUBackward
	OpResult

	// Backward ops, made by the autodiff pass.
	OpConv2DBackwardData
	OpConv2DBackwardFilter
	OpBiasGrad
	OpMaxPoolBackward
	OpAvgPoolBackward
	OpLinearBackwardData
	OpLinearBackwardWeight
	OpReLUBackward
	OpLeakyReLUBackward
	OpTanhBackward
	OpSigmoidBackward
	OpBatchNormBackward
	OpBatchNormBackwardGamma
	OpDropoutBackward
	OpSoftmaxBackward
	OpSoftmaxCrossEntropyBackward
	OpSVMLossBackward
	OpL2Backward
	OpL1Backward
	OpElasticNetBackward

	numOps
)

// An attribute names one field of [Attrs] that an op uses. The text form
// prints exactly the attributes an op's table entry lists, in that order.
type attribute uint8

const (
	attrName attribute = iota
	attrClasses
	attrInit
	attrValue
	attrStride
	attrPad
	attrDilation
	attrGroups
	attrKernel
	attrEps
	attrMomentum
	attrAlpha
	attrKeep
	attrClassic
	attrSeed
	attrLambda
	attrBeta
	attrMargin
	attrIndex
)

// opInfo describes one op.
type opInfo struct {
	name    string      // name in the text form and in messages
	minArgs int         // fewest arguments
	maxArgs int         // most arguments (a trailing optional one, like a bias)
	attrs   []attribute // attributes the op uses, in printing order
	leaf    bool        // no arguments; a value fed or stored, not computed
	scalar  bool        // result is a scalar (shape [])
	perChan bool        // result is per channel or a weight's shape: the batch is reduced away
	// results lists the values of an op with several: the node's own
	// value is result 0, and OpResult nodes stand for the others.
	results []result
}

var (
	convAttrs = []attribute{attrStride, attrPad, attrDilation, attrGroups}
	poolAttrs = []attribute{attrKernel, attrStride, attrPad}
	bnAttrs   = []attribute{attrEps}
	dropAttrs = []attribute{attrKeep, attrClassic, attrSeed}
)

// opTable is the one list of ops. Shapes use N for the batch, C and O for
// input and output channels or features, H and W for height and width,
// K for the number of classes. "Arg i" is the node's i-th argument.
var opTable = [numOps]opInfo{
	OpInvalid: {name: "invalid"},

	// A batch of samples fed by the caller: [N, C, H, W] or [N, F]. Name is
	// the feed's name.
	OpInput: {name: "input", attrs: []attribute{attrName}, leaf: true},
	// A batch of class indices fed by the caller: [N], int32 in [0, Classes).
	OpLabels: {name: "labels", attrs: []attribute{attrName, attrClasses}, leaf: true},
	// A trainable parameter, named as PyTorch's state_dict names it
	// ("conv1.weight"); Init says how it starts.
	OpParam: {name: "param", attrs: []attribute{attrName, attrInit}, leaf: true},
	// A stored, non-trainable tensor such as a batch-norm running statistic
	// ("bn1.running_mean"); Init says how it starts.
	OpBuffer: {name: "buffer", attrs: []attribute{attrName, attrInit}, leaf: true},
	// A tensor whose every element is Value.
	OpConst: {name: "const", attrs: []attribute{attrValue}, leaf: true},

	// Cross-correlation, as PyTorch's conv2d. Arg 0: input [N, C, H, W];
	// arg 1: weight [O, C/Groups, KH, KW]; optional arg 2: bias [O].
	// y[n,o,i,j] = b[o] + sum over c in o's group, p, q of
	//   x[n, c, i*SH - PH + p*DH, j*SW - PW + q*DW] * w[o, c mod C/Groups, p, q],
	// where x is zero outside its bounds.
	// OH = (H + 2*PH - DH*(KH-1) - 1)/SH + 1, likewise OW.
	OpConv2D: {name: "conv2d", minArgs: 2, maxArgs: 3, attrs: convAttrs},
	// Max over each Kernel window of arg 0 [N, C, H, W], stepped by Stride,
	// with the input padded by Pad on each side with -Inf. The window must
	// hold at least one real element.
	OpMaxPool: {name: "maxpool", minArgs: 1, maxArgs: 1, attrs: poolAttrs},
	// Mean over each Kernel window of arg 0, padded with zeros that count in
	// the divisor (KH*KW), as PyTorch's count_include_pad=True.
	OpAvgPool: {name: "avgpool", minArgs: 1, maxArgs: 1, attrs: poolAttrs},
	// Fully connected layer. Arg 0: x [N, F]; arg 1: weight [O, F];
	// optional arg 2: bias [O]. y = x * weight^T + bias.
	OpLinear: {name: "linear", minArgs: 2, maxArgs: 3},
	// Arg 0 viewed with the node's shape (same number of elements, same
	// row-major order). Flatten is a reshape to [N, C*H*W].
	OpReshape: {name: "reshape", minArgs: 1, maxArgs: 1},
	// max(x, 0), element-wise.
	OpReLU: {name: "relu", minArgs: 1, maxArgs: 1},
	// x if x > 0, else Alpha*x (Alpha >= 0).
	OpLeakyReLU: {name: "leakyrelu", minArgs: 1, maxArgs: 1, attrs: []attribute{attrAlpha}},
	// tanh(x), element-wise.
	OpTanh: {name: "tanh", minArgs: 1, maxArgs: 1},
	// 1 / (1 + exp(-x)), element-wise.
	OpSigmoid: {name: "sigmoid", minArgs: 1, maxArgs: 1},
	// Batch normalisation with batch statistics (training semantics).
	// Arg 0: x [N, C, H, W] or [N, C]; arg 1: gamma [C]; arg 2: beta [C];
	// arg 3: running mean [C] and arg 4: running variance [C] (buffers, not
	// read here: they tie the layer to its statistics for inference lowering).
	// mean and var (biased) are taken over N, H, W per channel;
	// y = (x - mean) / sqrt(var + Eps) * gamma + beta.
	OpBatchNorm: {name: "batchnorm", minArgs: 5, maxArgs: 5, attrs: bnAttrs},
	// Batch normalisation with running statistics (inference semantics).
	// Args as OpBatchNorm; y = (x - arg3) / sqrt(arg4 + Eps) * gamma + beta.
	OpBatchNormInfer: {name: "batchnorminfer", minArgs: 5, maxArgs: 5, attrs: bnAttrs},
	// The running mean after one training step. Arg 0: x as for OpBatchNorm;
	// arg 1: running mean [C]. y = (1-Momentum)*arg1 + Momentum*mean(x).
	OpRunningMean: {name: "runningmean", minArgs: 2, maxArgs: 2, attrs: []attribute{attrMomentum}, perChan: true},
	// The running variance after one training step. Arg 0: x; arg 1: running
	// variance [C]. y = (1-Momentum)*arg1 + Momentum*var(x)*M/(M-1), where M
	// = N*H*W is the count per channel (the unbiased variance, as PyTorch).
	OpRunningVar: {name: "runningvar", minArgs: 2, maxArgs: 2, attrs: []attribute{attrMomentum}, perChan: true},
	// Dropout in training. Element i (row-major index in arg 0) is kept iff
	// u(i) < Keep, u(i) = Uniform01(Seed ^ runSeed, step, i) (see eval).
	// Inverted: y = x*mask/Keep. Classic: y = x*mask (and x*Keep at inference).
	OpDropout: {name: "dropout", minArgs: 1, maxArgs: 1, attrs: dropAttrs},
	// Arg 0 + arg 1, element-wise, same shapes.
	OpAdd: {name: "add", minArgs: 2, maxArgs: 2},
	// Alpha * arg 0.
	OpScale: {name: "scale", minArgs: 1, maxArgs: 1, attrs: []attribute{attrAlpha}},
	// Soft-max over axis 1 of arg 0 [N, K].
	OpSoftmax: {name: "softmax", minArgs: 1, maxArgs: 1},
	// Mean over the batch of -log softmax(arg 0)[n, arg1[n]]. Arg 0: logits
	// [N, K]; arg 1: labels [N]. Scalar.
	OpSoftmaxCrossEntropy: {name: "softmaxcrossentropy", minArgs: 2, maxArgs: 2, scalar: true},
	// Multiclass SVM (hinge) loss: mean over the batch of
	// sum over j != y of max(0, s_j - s_y + Margin). Arg 0: scores [N, K];
	// arg 1: labels [N]. Scalar.
	OpSVMLoss: {name: "svmloss", minArgs: 2, maxArgs: 2, attrs: []attribute{attrMargin}, scalar: true},
	// Lambda * sum of squares of arg 0. Scalar.
	OpL2: {name: "l2", minArgs: 1, maxArgs: 1, attrs: []attribute{attrLambda}, scalar: true},
	// Lambda * sum of absolute values of arg 0. Scalar.
	OpL1: {name: "l1", minArgs: 1, maxArgs: 1, attrs: []attribute{attrLambda}, scalar: true},
	// Lambda * sum of (Beta * w^2 + |w|) over arg 0. Scalar.
	OpElasticNet: {name: "elasticnet", minArgs: 1, maxArgs: 1, attrs: []attribute{attrLambda, attrBeta}, scalar: true},

	// relu(conv2d(args)): a convolution with the ReLU applied in its
	// epilogue. Args and attributes as OpConv2D.
	OpConv2DReLU: {name: "conv2d_relu", minArgs: 2, maxArgs: 3, attrs: convAttrs},
	// tanh(conv2d(args)), the tanh in the epilogue. Args and attributes
	// as OpConv2D.
	OpConv2DTanh: {name: "conv2d_tanh", minArgs: 2, maxArgs: 3, attrs: convAttrs},
	// relu(linear(args)). Args as OpLinear.
	OpLinearReLU: {name: "linear_relu", minArgs: 2, maxArgs: 3},
	// tanh(linear(args)): a linear layer with the tanh applied in its
	// epilogue. Args as OpLinear.
	OpLinearTanh: {name: "linear_tanh", minArgs: 2, maxArgs: 3},
	// A weight with an inference batch-norm folded in. Arg 0: the conv or
	// linear weight [O, ...]; arg 1: gamma [O]; arg 2: running variance [O].
	// y[o, ...] = w[o, ...] * gamma[o] / sqrt(var[o] + Eps), computed in
	// float64 as PyTorch's fuse_conv_bn_weights.
	OpFoldBNWeight: {name: "fold_bn_weight", minArgs: 3, maxArgs: 3, attrs: bnAttrs},
	// A bias with an inference batch-norm folded in. Arg 0: gamma; arg 1:
	// beta; arg 2: running mean; arg 3: running variance; optional arg 4:
	// the layer's bias b (0 if absent), all [O].
	// y = (b - mean) * gamma / sqrt(var + Eps) + beta.
	OpFoldBNBias: {name: "fold_bn_bias", minArgs: 4, maxArgs: 5, attrs: bnAttrs},
	// relu(batchnorm(args)) with batch statistics: the fused training
	// forward of batch-norm and ReLU. Args and attributes as OpBatchNorm.
	// Its output y is what the fused backward ops need besides x: the
	// ReLU's mask is y > 0, and the statistics are recomputed from x.
	OpBatchNormReLU: {name: "batchnorm_relu", minArgs: 5, maxArgs: 5, attrs: bnAttrs},
	// Gradient of batchnorm_relu with respect to x. Arg 0: x; arg 1: gamma;
	// arg 2: y, the fused op's output; arg 3: dy. With dz = dy where y > 0
	// and 0 elsewhere, it is OpBatchNormBackward(x, gamma, dz).
	OpBatchNormReLUBackward: {name: "batchnorm_relu_backward", minArgs: 4, maxArgs: 4, attrs: bnAttrs},
	// Gradient of batchnorm_relu with respect to gamma: sum of dz*xhat per
	// channel, dz as above. Arg 0: x; arg 1: y; arg 2: dy. [C].
	OpBatchNormReLUBackwardGamma: {name: "batchnorm_relu_backward_gamma", minArgs: 3, maxArgs: 3, attrs: bnAttrs, perChan: true},
	// Sum of dy where y > 0 over every axis but axis 1: the gradient of the
	// beta (or bias) before a ReLU. Arg 0: y, the ReLU's output; arg 1: dy.
	OpReLUBiasGrad: {name: "relu_biasgrad", minArgs: 2, maxArgs: 2, perChan: true},
	// The training forward of convolution, batch-norm (batch statistics)
	// and ReLU as one op, which also computes the layer's running
	// statistics and saves what its backward needs. Arg 0: x [N, C, H, W];
	// arg 1: weight [O, C/Groups, KH, KW] (the convolution has no bias: the
	// batch-norm's mean would cancel it); arg 2: gamma [O]; arg 3: beta
	// [O]; arg 4: running mean [O]; arg 5: running variance [O]. With
	// z = conv2d(x, weight):
	//   result 0 (the node): y = relu(batchnorm(z, gamma, beta)) [N, O, OH, OW]
	//   result 1: z, saved for the backward
	//   result 2: [2, O], the batch mean of z and 1/sqrt(var + Eps), saved
	//   result 3: the running mean after the step, as OpRunningMean
	//   result 4: the running variance after the step, as OpRunningVar
	OpConv2DBNReLU: {name: "conv2d_bn_relu", minArgs: 6, maxArgs: 6,
		attrs:   []attribute{attrStride, attrPad, attrDilation, attrGroups, attrEps, attrMomentum},
		results: []result{{"y", false}, {"z", false}, {"stats", true}, {"running mean", true}, {"running variance", true}}},
	// The backward of conv2d_bn_relu. Arg 0: x; arg 1: weight; arg 2:
	// gamma; arg 3: y, the forward's result 0 (its mask); arg 4: z and
	// arg 5: the statistics, its results 1 and 2; arg 6: dy. With
	// dz = the gradient of batch-norm for dy masked by y > 0:
	//   result 0 (the node): the gradient of gamma, sum of dy*xhat [O]
	//   result 1: the gradient of beta, sum of the masked dy [O]
	//   result 2: the gradient of the weight, conv2d_backward_filter(x, dz)
	//   result 3: the gradient of x, conv2d_backward_data(dz, weight)
	OpConv2DBNReLUBackward: {name: "conv2d_bn_relu_backward", minArgs: 7, maxArgs: 7, attrs: convAttrs, perChan: true,
		results: []result{{"gamma gradient", true}, {"beta gradient", true}, {"weight gradient", true}, {"input gradient", false}}},
	// Result Index (at least 1) of arg 0, an op with several results. A
	// result node comes right after its op (or a sibling result): code
	// generators write it with the op's kernel.
	OpResult: {name: "result", minArgs: 1, maxArgs: 1, attrs: []attribute{attrIndex}},

	// Gradient of conv2d with respect to its input. Arg 0: dy [N, O, OH, OW];
	// arg 1: weight. The node's shape is the input's [N, C, H, W].
	OpConv2DBackwardData: {name: "conv2d_backward_data", minArgs: 2, maxArgs: 2, attrs: convAttrs},
	// Gradient of conv2d with respect to its weight. Arg 0: x [N, C, H, W];
	// arg 1: dy [N, O, OH, OW]. The node's shape is the weight's
	// [O, C/Groups, KH, KW]. The sum over the batch runs in index order.
	OpConv2DBackwardFilter: {name: "conv2d_backward_filter", minArgs: 2, maxArgs: 2, attrs: convAttrs, perChan: true},
	// Sum of arg 0 over every axis but axis 1: the gradient of a bias or of
	// batch-norm's beta. [N, C, ...] -> [C].
	OpBiasGrad: {name: "biasgrad", minArgs: 1, maxArgs: 1, perChan: true},
	// Gradient of max-pool. Arg 0: the pool's input x; arg 1: dy. Each
	// window's gradient goes to its first maximum in row-major window order
	// (as PyTorch; a NaN beats every number and the first NaN wins), summed
	// where windows overlap. Shape of x.
	OpMaxPoolBackward: {name: "maxpool_backward", minArgs: 2, maxArgs: 2, attrs: poolAttrs},
	// Gradient of max-pool through the ReLU before it: arg 1 where arg 0
	// > 0, else 0, of maxpool_backward(arg 0, arg 1), made by
	// FuseMaxPoolReLUBackward. Arg 0: the pool's input x, the ReLU's
	// output; arg 1: dy. Shape of x.
	OpMaxPoolReLUBackward: {name: "maxpool_relu_backward", minArgs: 2, maxArgs: 2, attrs: poolAttrs},
	// Gradient of avg-pool. Arg 0: dy. Each window spreads dy/(KH*KW) over
	// its real elements. The node's shape is the pool's input shape.
	OpAvgPoolBackward: {name: "avgpool_backward", minArgs: 1, maxArgs: 1, attrs: poolAttrs},
	// Gradient of linear with respect to x. Arg 0: dy [N, O]; arg 1: weight
	// [O, F]. dx = dy * weight, [N, F].
	OpLinearBackwardData: {name: "linear_backward_data", minArgs: 2, maxArgs: 2},
	// Gradient of linear with respect to its weight. Arg 0: x [N, F];
	// arg 1: dy [N, O]. dw = dy^T * x, [O, F].
	OpLinearBackwardWeight: {name: "linear_backward_weight", minArgs: 2, maxArgs: 2, perChan: true},
	// Arg 1 where arg 0 (the ReLU's output) > 0, else 0.
	OpReLUBackward: {name: "relu_backward", minArgs: 2, maxArgs: 2},
	// Arg 1 where arg 0 (the leaky ReLU's output) > 0, else Alpha*arg 1.
	OpLeakyReLUBackward: {name: "leakyrelu_backward", minArgs: 2, maxArgs: 2, attrs: []attribute{attrAlpha}},
	// dy * (1 - y^2). Arg 0: y, the tanh's output; arg 1: dy.
	OpTanhBackward: {name: "tanh_backward", minArgs: 2, maxArgs: 2},
	// dy * y * (1 - y). Arg 0: y, the sigmoid's output; arg 1: dy.
	OpSigmoidBackward: {name: "sigmoid_backward", minArgs: 2, maxArgs: 2},
	// Gradient of batch-norm (batch statistics) with respect to x. Arg 0: x;
	// arg 1: gamma; arg 2: dy. With xhat = (x - mean)*istd over M elements
	// per channel: dx = gamma*istd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)).
	OpBatchNormBackward: {name: "batchnorm_backward", minArgs: 3, maxArgs: 3, attrs: bnAttrs},
	// Gradient of batch-norm with respect to gamma: sum of dy*xhat per
	// channel. Arg 0: x; arg 1: dy. [C].
	OpBatchNormBackwardGamma: {name: "batchnorm_backward_gamma", minArgs: 2, maxArgs: 2, attrs: bnAttrs, perChan: true},
	// Gradient of dropout: dy times the same mask (and 1/Keep if inverted),
	// recomputed from the seed. Arg 0: dy.
	OpDropoutBackward: {name: "dropout_backward", minArgs: 1, maxArgs: 1, attrs: dropAttrs},
	// Gradient of softmax. Arg 0: y, the softmax's output; arg 1: dy.
	// dx[n,k] = y[n,k] * (dy[n,k] - sum over j of dy[n,j]*y[n,j]).
	OpSoftmaxBackward: {name: "softmax_backward", minArgs: 2, maxArgs: 2},
	// Gradient of softmax cross-entropy with respect to the logits. Arg 0:
	// logits; arg 1: labels; arg 2: dloss (scalar).
	// dx[n,k] = dloss * (softmax(x)[n,k] - [k == label n]) / N.
	OpSoftmaxCrossEntropyBackward: {name: "softmaxcrossentropy_backward", minArgs: 3, maxArgs: 3},
	// Gradient of the SVM loss with respect to the scores. Arg 0: scores;
	// arg 1: labels; arg 2: dloss. For j != y with s_j - s_y + Margin > 0:
	// dx[n,j] += dloss/N and dx[n,y] -= dloss/N.
	OpSVMLossBackward: {name: "svmloss_backward", minArgs: 3, maxArgs: 3, attrs: []attribute{attrMargin}},
	// dloss * 2*Lambda*w. Arg 0: w; arg 1: dloss.
	OpL2Backward: {name: "l2_backward", minArgs: 2, maxArgs: 2, attrs: []attribute{attrLambda}},
	// dloss * Lambda*sign(w), with sign(0) = 0. Arg 0: w; arg 1: dloss.
	OpL1Backward: {name: "l1_backward", minArgs: 2, maxArgs: 2, attrs: []attribute{attrLambda}},
	// dloss * Lambda*(2*Beta*w + sign(w)). Arg 0: w; arg 1: dloss.
	OpElasticNetBackward: {name: "elasticnet_backward", minArgs: 2, maxArgs: 2, attrs: []attribute{attrLambda, attrBeta}},
}

// String returns the op's name in the text form.
func (op Op) String() string {
	if op >= numOps {
		return "op?"
	}
	return opTable[op].name
}

// A result is one value of an op with several.
type result struct {
	what    string // what it is, for messages
	reduced bool   // it has no batch axis although the op's arguments may
}

// Results returns how many values an op computes: 1 for most ops, more for
// the ones whose extra values OpResult nodes take.
func (op Op) Results() int {
	if op < numOps && len(opTable[op].results) > 0 {
		return len(opTable[op].results)
	}
	return 1
}

// ReducesBatch reports whether the op's result has no batch axis although
// its arguments may: a loss or regulariser (a scalar), a per-channel
// reduction such as a bias gradient or a running statistic, or a weight
// gradient.
func (op Op) ReducesBatch() bool {
	return op < numOps && (opTable[op].scalar || opTable[op].perChan)
}

// IsLeaf reports whether the op takes no arguments: a value fed by the
// caller or stored in the model.
func (op Op) IsLeaf() bool { return op < numOps && opTable[op].leaf }

// OpByName returns the op with the given text-form name.
func OpByName(name string) (Op, bool) {
	for op := OpInput; op < numOps; op++ {
		if opTable[op].name == name {
			return op, true
		}
	}
	return OpInvalid, false
}

// Ops returns every valid op, in table order.
func Ops() []Op {
	ops := make([]Op, 0, numOps-1)
	for op := OpInput; op < numOps; op++ {
		ops = append(ops, op)
	}
	return ops
}
