package runtime

import (
	"fmt"
	"math"
	"strings"
)

// An Init says how to fill a parameter when a model is created. The schemes
// follow torch.nn.init:
//
//	zeros            0
//	ones             1
//	const            Value
//	normal           N(0, Value^2)
//	uniform          U(-Value, Value)
//	xavier_normal    N(0, std^2),  std = gain * sqrt(2 / (FanIn + FanOut))
//	xavier_uniform   U(-b, b),     b = gain * sqrt(6 / (FanIn + FanOut))
//	kaiming_normal   N(0, std^2),  std = sqrt(2 / fan)
//	kaiming_uniform  U(-b, b),     b = sqrt(6 / fan)
//	torch_default    U(-b, b),     b = 1 / sqrt(FanIn)
//
// where gain is Value, or 1 when Value is 0, and fan is FanIn when Mode is
// "" or "fan_in" and FanOut when Mode is "fan_out". The kaiming schemes use
// PyTorch's default ReLU gain sqrt(2) and ignore Value. torch_default is
// what PyTorch's Conv2d and Linear do to their weight and bias by default.
type Init struct {
	Scheme string
	Value  float64
	FanIn  int
	FanOut int
	Mode   string
}

// initSchemes lists the known schemes, in the order the Init doc gives.
var initSchemes = []string{
	"zeros", "ones", "const", "normal", "uniform",
	"xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
	"torch_default",
}

// Validate reports whether in names a known scheme with the fans and mode it
// needs.
func (in Init) Validate() error {
	switch in.Scheme {
	case "zeros", "ones", "const":
		return nil
	case "normal", "uniform":
		if in.Value < 0 || math.IsNaN(in.Value) || math.IsInf(in.Value, 0) {
			return fmt.Errorf("init %s: scale %v must be a finite number >= 0", in.Scheme, in.Value)
		}
		return nil
	case "xavier_normal", "xavier_uniform":
		if in.FanIn < 0 || in.FanOut < 0 || in.FanIn+in.FanOut == 0 {
			return fmt.Errorf("init %s: needs FanIn + FanOut > 0, have FanIn %d and FanOut %d", in.Scheme, in.FanIn, in.FanOut)
		}
		return nil
	case "kaiming_normal", "kaiming_uniform":
		if in.Mode != "" && in.Mode != "fan_in" && in.Mode != "fan_out" {
			return fmt.Errorf("init %s: unknown mode %q, want \"fan_in\" or \"fan_out\"", in.Scheme, in.Mode)
		}
		if fan := in.fan(); fan <= 0 {
			return fmt.Errorf("init %s: needs a positive %s, have %d", in.Scheme, in.fanName(), fan)
		}
		return nil
	case "torch_default":
		if in.FanIn <= 0 {
			return fmt.Errorf("init torch_default: needs a positive FanIn, have %d", in.FanIn)
		}
		return nil
	}
	return fmt.Errorf("unknown init scheme %q; known schemes are %s", in.Scheme, strings.Join(initSchemes, ", "))
}

func (in Init) fan() int {
	if in.Mode == "fan_out" {
		return in.FanOut
	}
	return in.FanIn
}

func (in Init) fanName() string {
	if in.Mode == "fan_out" {
		return "FanOut"
	}
	return "FanIn"
}

func (in Init) gain() float64 {
	if in.Value == 0 {
		return 1
	}
	return in.Value
}

// Std returns the standard deviation of the values Fill draws, which tests
// and the activation-statistics report compare against.
func (in Init) Std() float64 {
	switch in.Scheme {
	case "normal":
		return in.Value
	case "uniform":
		return in.Value / math.Sqrt(3)
	case "xavier_normal":
		return in.gain() * math.Sqrt(2/float64(in.FanIn+in.FanOut))
	case "xavier_uniform":
		return in.gain() * math.Sqrt(2/float64(in.FanIn+in.FanOut))
	case "kaiming_normal", "kaiming_uniform":
		return math.Sqrt(2 / float64(in.fan()))
	case "torch_default":
		return 1 / math.Sqrt(3*float64(in.FanIn))
	}
	return 0
}

// FillParam fills p.Data as Fill fills a slice holding p in row-major
// order, whatever p's layout (Param.Panels): the same seed gives the same
// parameters either way.
func (in Init) FillParam(p *Param, rng *RNG) {
	if !p.Panels {
		in.Fill(p.Data, rng)
		return
	}
	logical := make([]float32, len(p.Data))
	in.Fill(logical, rng)
	p.SetLogical(p.Data, logical)
}

// Fill fills data as the scheme says, drawing from rng in order, one value
// (two Uint64 draws for normal schemes, one for uniform ones) per element, so
// the same seed gives the same parameters. It panics if in.Validate fails:
// the compiler validates every Init before it generates code.
func (in Init) Fill(data []float32, rng *RNG) {
	if err := in.Validate(); err != nil {
		panic("runtime: " + err.Error())
	}
	switch in.Scheme {
	case "zeros":
		fillConst(data, 0)
	case "ones":
		fillConst(data, 1)
	case "const":
		fillConst(data, float32(in.Value))
	case "normal":
		fillNormal(data, in.Value, rng)
	case "uniform":
		fillUniform(data, in.Value, rng)
	case "xavier_normal", "kaiming_normal":
		fillNormal(data, in.Std(), rng)
	case "xavier_uniform":
		fillUniform(data, in.gain()*math.Sqrt(6/float64(in.FanIn+in.FanOut)), rng)
	case "kaiming_uniform":
		fillUniform(data, math.Sqrt(6/float64(in.fan())), rng)
	case "torch_default":
		fillUniform(data, 1/math.Sqrt(float64(in.FanIn)), rng)
	}
}

func fillConst(data []float32, v float32) {
	for i := range data {
		data[i] = v
	}
}

func fillNormal(data []float32, std float64, rng *RNG) {
	for i := range data {
		data[i] = float32(std * rng.NormFloat64())
	}
}

func fillUniform(data []float32, bound float64, rng *RNG) {
	for i := range data {
		data[i] = float32(bound * (2*rng.Float64() - 1))
	}
}
