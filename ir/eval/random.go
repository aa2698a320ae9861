package eval

import (
	"math"
	"strings"

	"github.com/cnnc/cnnc/ir"
)

// splitmix64 is one step of Steele, Lea and Flood's SplitMix64 generator:
// it adds the golden-ratio increment to z and mixes the result.
func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uniform01 returns a uniform number in [0, 1) that depends only on its
// arguments: float32(x>>40) * 2^-24 with
// x = splitmix64(seed ^ splitmix64(step ^ splitmix64(index))).
// The result has 24 random bits and is exact in float32. Dropout keeps
// element index of a tensor at training step step iff
// Uniform01(layer seed ^ run seed, step, index) < keep.
func Uniform01(seed, step, index uint64) float32 {
	x := splitmix64(seed ^ splitmix64(step^splitmix64(index)))
	return float32(x>>40) * (1.0 / (1 << 24))
}

// dropoutKeeps reports whether dropout node attributes a keep element i at
// the run's step.
func dropoutKeeps(a ir.Attrs, opts Options, i int) bool {
	return float64(Uniform01(a.Seed^opts.RunSeed, opts.Step, uint64(i))) < a.Keep
}

// rng is a SplitMix64 stream, used to make test feeds. It is written out
// here rather than taken from math/rand so that the feeds never change with
// the Go version.
type rng struct{ state uint64 }

func (r *rng) uint64() uint64 {
	x := splitmix64(r.state)
	r.state += 0x9e3779b97f4a7c15
	return x
}

// float64 returns a uniform number in [0, 1).
func (r *rng) float64() float64 { return float64(r.uint64()>>11) * (1.0 / (1 << 53)) }

// uniform returns a uniform number in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float64() }

// normal returns a standard normal number (Box-Muller).
func (r *rng) normal() float64 {
	u1 := 1 - r.float64() // in (0, 1]
	u2 := r.float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// RandomFeeds returns seeded random feeds for every input, labels, param and
// buffer node of g, keyed by name as [Run] wants them. Each feed's values
// depend only on seed and the feed's name and shape, so a graph and its
// rewritten form get the same feeds.
//
//   - inputs: N(0, 1);
//   - labels: uniform over [0, Classes);
//   - params: drawn as their InitSpec says (normal, uniform, xavier_*,
//     kaiming_*, torch_default, with fans taken from the shape when the
//     spec has none); the fixed schemes (zeros, ones, const) get their value
//     plus N(0, 0.1^2) noise, so that a zero bias or a unit gamma cannot
//     hide a mistake;
//   - buffers: running variances (a buffer that batch-norm or a running
//     variance update reads as a variance, or whose name ends in "var")
//     U(0.5, 1.5); others, such as running means, N(0, 0.1^2).
func RandomFeeds(g *ir.Graph, seed uint64) map[string]*Tensor {
	variance := map[*ir.Node]bool{}
	classes := map[*ir.Node]int{}
	for _, n := range g.Nodes {
		switch n.Op {
		case ir.OpBatchNorm, ir.OpBatchNormInfer:
			if len(n.Args) == 5 {
				variance[n.Args[4]] = true
			}
		case ir.OpRunningVar:
			if len(n.Args) == 2 {
				variance[n.Args[1]] = true
			}
		case ir.OpSoftmaxCrossEntropy, ir.OpSVMLoss, ir.OpSoftmaxCrossEntropyBackward, ir.OpSVMLossBackward:
			if len(n.Args) >= 2 && len(n.Args[0].Shape) == 2 {
				classes[n.Args[1]] = n.Args[0].Shape[1]
			}
		}
	}
	feeds := map[string]*Tensor{}
	for _, n := range g.Nodes {
		if !n.Op.IsLeaf() || n.Op == ir.OpConst {
			continue
		}
		t := NewTensor(n.Shape)
		r := &rng{state: splitmix64(seed ^ ir.NameSeed(n.Attrs.Name))}
		switch n.Op {
		case ir.OpInput:
			for i := range t.Data {
				t.Data[i] = r.normal()
			}
		case ir.OpLabels:
			k := n.Attrs.Classes
			if k < 1 {
				k = classes[n]
			}
			for i := range t.Data {
				if k > 0 {
					t.Data[i] = float64(r.uint64() % uint64(k))
				}
			}
		case ir.OpParam:
			fillInit(t, n.Attrs.Init, r)
		case ir.OpBuffer:
			if variance[n] || strings.HasSuffix(n.Attrs.Name, "var") {
				for i := range t.Data {
					t.Data[i] = r.uniform(0.5, 1.5)
				}
			} else {
				for i := range t.Data {
					t.Data[i] = 0.1 * r.normal()
				}
			}
		}
		feeds[n.Attrs.Name] = t
	}
	return feeds
}

// fillInit fills t as the initialiser spec says (see ir.InitSpec and the
// runtime's initialisers), with noise added to the fixed schemes.
func fillInit(t *Tensor, spec ir.InitSpec, r *rng) {
	fanIn, fanOut := spec.FanIn, spec.FanOut
	if fanIn <= 0 || fanOut <= 0 {
		fanIn, fanOut = shapeFans(t.Shape)
	}
	fan := fanIn
	if spec.Mode == "fan_out" {
		fan = fanOut
	}
	gain := spec.Value
	if gain == 0 {
		gain = 1
	}
	normal := func(std float64) {
		for i := range t.Data {
			t.Data[i] = std * r.normal()
		}
	}
	uniform := func(bound float64) {
		for i := range t.Data {
			t.Data[i] = r.uniform(-bound, bound)
		}
	}
	around := func(v float64) {
		for i := range t.Data {
			t.Data[i] = v + 0.1*r.normal()
		}
	}
	switch spec.Scheme {
	case "zeros":
		around(0)
	case "ones":
		around(1)
	case "const":
		around(spec.Value)
	case "normal":
		normal(spec.Value)
	case "uniform":
		uniform(spec.Value)
	case "xavier_normal":
		normal(gain * math.Sqrt(2/float64(fanIn+fanOut)))
	case "xavier_uniform":
		uniform(gain * math.Sqrt(6/float64(fanIn+fanOut)))
	case "kaiming_normal":
		normal(math.Sqrt(2 / float64(fan)))
	case "kaiming_uniform":
		uniform(math.Sqrt(6 / float64(fan)))
	case "torch_default":
		uniform(1 / math.Sqrt(float64(fanIn)))
	default:
		normal(0.1)
	}
}

// shapeFans returns PyTorch's fans for a weight of the given shape:
// fan in = shape[1]*receptive field, fan out = shape[0]*receptive field.
func shapeFans(s ir.Shape) (fanIn, fanOut int) {
	switch len(s) {
	case 0:
		return 1, 1
	case 1:
		return s[0], s[0]
	}
	field := 1
	for _, d := range s[2:] {
		field *= d
	}
	return s[1] * field, s[0] * field
}
