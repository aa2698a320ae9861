package eval

import (
	"math"

	"github.com/cnnc/cnnc/ir"
)

// dims4 returns the four dimensions of a rank-4 shape.
func dims4(s ir.Shape) (int, int, int, int) { return s[0], s[1], s[2], s[3] }

// at4 returns the row-major index of element (a, b, c, d) of shape s.
func at4(s ir.Shape, a, b, c, d int) int { return ((a*s[1]+b)*s[2]+c)*s[3] + d }

// conv2D is OpConv2D: y[n,o,i,j] = b[o] + the sum over c in o's group and
// taps (p, q) of x[n, c, i*SH-PH+p*DH, j*SW-PW+q*DW] * w[o, c mod C/G, p, q],
// with x zero outside its bounds. b may be nil.
func conv2D(x, w, b *Tensor, a ir.Attrs, shape ir.Shape) *Tensor {
	y := NewTensor(shape)
	N, _, H, W := dims4(x.Shape)
	O, CG, KH, KW := dims4(w.Shape)
	_, _, OH, OW := dims4(shape)
	OG := O / a.Groups // output channels per group
	for n := range N {
		for o := range O {
			g := o / OG
			for i := range OH {
				for j := range OW {
					sum := 0.0
					for cg := range CG {
						c := g*CG + cg
						for p := range KH {
							h := i*a.Stride[0] - a.Pad[0] + p*a.Dilation[0]
							if h < 0 || h >= H {
								continue
							}
							for q := range KW {
								v := j*a.Stride[1] - a.Pad[1] + q*a.Dilation[1]
								if v < 0 || v >= W {
									continue
								}
								sum += x.Data[at4(x.Shape, n, c, h, v)] * w.Data[at4(w.Shape, o, cg, p, q)]
							}
						}
					}
					if b != nil {
						sum = b.Data[o] + sum
					}
					y.Data[at4(shape, n, o, i, j)] = sum
				}
			}
		}
	}
	return y
}

// conv2DBackwardData is OpConv2DBackwardData: the gradient of conv2D with
// respect to x. Every product x[...]*w[...] of the forward sum sends
// dy[n,o,i,j]*w[o,cg,p,q] back to the x element it read.
func conv2DBackwardData(dy, w *Tensor, a ir.Attrs, shape ir.Shape) *Tensor {
	dx := NewTensor(shape)
	_, _, H, W := dims4(shape)
	N, O, OH, OW := dims4(dy.Shape)
	_, CG, KH, KW := dims4(w.Shape)
	OG := O / a.Groups
	for n := range N {
		for o := range O {
			g := o / OG
			for i := range OH {
				for j := range OW {
					d := dy.Data[at4(dy.Shape, n, o, i, j)]
					for cg := range CG {
						c := g*CG + cg
						for p := range KH {
							h := i*a.Stride[0] - a.Pad[0] + p*a.Dilation[0]
							if h < 0 || h >= H {
								continue
							}
							for q := range KW {
								v := j*a.Stride[1] - a.Pad[1] + q*a.Dilation[1]
								if v < 0 || v >= W {
									continue
								}
								dx.Data[at4(shape, n, c, h, v)] += d * w.Data[at4(w.Shape, o, cg, p, q)]
							}
						}
					}
				}
			}
		}
	}
	return dx
}

// conv2DBackwardFilter is OpConv2DBackwardFilter: the gradient of conv2D
// with respect to w, dw[o,cg,p,q] = the sum over n, i, j (in that order)
// of x[n, c, i*SH-PH+p*DH, j*SW-PW+q*DW] * dy[n,o,i,j].
func conv2DBackwardFilter(x, dy *Tensor, a ir.Attrs, shape ir.Shape) *Tensor {
	dw := NewTensor(shape)
	N, _, H, W := dims4(x.Shape)
	O, CG, KH, KW := dims4(shape)
	_, _, OH, OW := dims4(dy.Shape)
	OG := O / a.Groups
	for o := range O {
		g := o / OG
		for cg := range CG {
			c := g*CG + cg
			for p := range KH {
				for q := range KW {
					sum := 0.0
					for n := range N {
						for i := range OH {
							h := i*a.Stride[0] - a.Pad[0] + p*a.Dilation[0]
							if h < 0 || h >= H {
								continue
							}
							for j := range OW {
								v := j*a.Stride[1] - a.Pad[1] + q*a.Dilation[1]
								if v < 0 || v >= W {
									continue
								}
								sum += x.Data[at4(x.Shape, n, c, h, v)] * dy.Data[at4(dy.Shape, n, o, i, j)]
							}
						}
					}
					dw.Data[at4(shape, o, cg, p, q)] = sum
				}
			}
		}
	}
	return dw
}

// biasGrad is OpBiasGrad: the sum of dy over every axis but axis 1, in
// index order.
func biasGrad(dy *Tensor) *Tensor {
	N, C, S := channelDims(dy.Shape)
	db := NewTensor(ir.Shape{C})
	for c := range C {
		sum := 0.0
		for n := range N {
			for s := range S {
				sum += dy.Data[(n*C+c)*S+s]
			}
		}
		db.Data[c] = sum
	}
	return db
}

// channelDims views a shape [N, C, ...] as [N, C, S], S the product of the
// trailing dimensions (1 for [N, C]).
func channelDims(s ir.Shape) (n, c, rest int) {
	rest = 1
	for _, d := range s[2:] {
		rest *= d
	}
	return s[0], s[1], rest
}

// poolArgmax returns the index in x of the maximum of pool window (i, j) of
// channel c of sample n: the first maximum in row-major window order
// (strict >), among the window's real elements only, since the padding is
// -Inf. A NaN wins over any number, as in PyTorch; the first NaN wins over
// later ones. It returns -1 for a window with no real element, which
// Validate rules out.
func poolArgmax(x *Tensor, a ir.Attrs, n, c, i, j int) int {
	_, _, H, W := dims4(x.Shape)
	best := -1
	for p := range a.Kernel[0] {
		h := i*a.Stride[0] - a.Pad[0] + p
		if h < 0 || h >= H {
			continue
		}
		for q := range a.Kernel[1] {
			v := j*a.Stride[1] - a.Pad[1] + q
			if v < 0 || v >= W {
				continue
			}
			k := at4(x.Shape, n, c, h, v)
			if best < 0 || x.Data[k] > x.Data[best] || (math.IsNaN(x.Data[k]) && !math.IsNaN(x.Data[best])) {
				best = k
			}
		}
	}
	return best
}

// maxPool is OpMaxPool.
func maxPool(x *Tensor, a ir.Attrs, shape ir.Shape) *Tensor {
	y := NewTensor(shape)
	N, C, OH, OW := dims4(shape)
	for n := range N {
		for c := range C {
			for i := range OH {
				for j := range OW {
					v := math.Inf(-1)
					if k := poolArgmax(x, a, n, c, i, j); k >= 0 {
						v = x.Data[k]
					}
					y.Data[at4(shape, n, c, i, j)] = v
				}
			}
		}
	}
	return y
}

// maxPoolBackward is OpMaxPoolBackward: each window's dy goes to the
// element poolArgmax picks, summed where windows overlap.
func maxPoolBackward(x, dy *Tensor, a ir.Attrs) *Tensor {
	dx := NewTensor(x.Shape)
	N, C, OH, OW := dims4(dy.Shape)
	for n := range N {
		for c := range C {
			for i := range OH {
				for j := range OW {
					if k := poolArgmax(x, a, n, c, i, j); k >= 0 {
						dx.Data[k] += dy.Data[at4(dy.Shape, n, c, i, j)]
					}
				}
			}
		}
	}
	return dx
}

// avgPool is OpAvgPool: the sum of each window's real elements divided by
// KH*KW, the padding counting as zeros.
func avgPool(x *Tensor, a ir.Attrs, shape ir.Shape) *Tensor {
	y := NewTensor(shape)
	_, _, H, W := dims4(x.Shape)
	N, C, OH, OW := dims4(shape)
	count := float64(a.Kernel[0] * a.Kernel[1])
	for n := range N {
		for c := range C {
			for i := range OH {
				for j := range OW {
					sum := 0.0
					for p := range a.Kernel[0] {
						h := i*a.Stride[0] - a.Pad[0] + p
						if h < 0 || h >= H {
							continue
						}
						for q := range a.Kernel[1] {
							v := j*a.Stride[1] - a.Pad[1] + q
							if v < 0 || v >= W {
								continue
							}
							sum += x.Data[at4(x.Shape, n, c, h, v)]
						}
					}
					y.Data[at4(shape, n, c, i, j)] = sum / count
				}
			}
		}
	}
	return y
}

// avgPoolBackward is OpAvgPoolBackward: each window spreads dy/(KH*KW)
// over its real elements.
func avgPoolBackward(dy *Tensor, a ir.Attrs, shape ir.Shape) *Tensor {
	dx := NewTensor(shape)
	_, _, H, W := dims4(shape)
	N, C, OH, OW := dims4(dy.Shape)
	count := float64(a.Kernel[0] * a.Kernel[1])
	for n := range N {
		for c := range C {
			for i := range OH {
				for j := range OW {
					d := dy.Data[at4(dy.Shape, n, c, i, j)] / count
					for p := range a.Kernel[0] {
						h := i*a.Stride[0] - a.Pad[0] + p
						if h < 0 || h >= H {
							continue
						}
						for q := range a.Kernel[1] {
							v := j*a.Stride[1] - a.Pad[1] + q
							if v < 0 || v >= W {
								continue
							}
							dx.Data[at4(shape, n, c, h, v)] += d
						}
					}
				}
			}
		}
	}
	return dx
}
