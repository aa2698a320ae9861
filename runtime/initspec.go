package runtime

import (
	"fmt"
	"strings"
)

// initAliases maps the other names of schemes, Keras's among them, to the
// names Init uses.
var initAliases = map[string]string{
	"zero":           "zeros",
	"one":            "ones",
	"constant":       "const",
	"he_normal":      "kaiming_normal",
	"he_uniform":     "kaiming_uniform",
	"glorot_normal":  "xavier_normal",
	"glorot_uniform": "xavier_uniform",
	"default":        "torch_default",
}

// initExamples is the help text of ParseInit's errors.
const initExamples = "he_normal, xavier_uniform, normal:0.01, const:0, kaiming_uniform:fan_out"

// ParseInit parses an initialisation scheme from the trainer's -init flag.
// The grammar is SCHEME[:ARG]:
//
//	zeros, ones                       no argument
//	const:V                           every value V
//	normal:STD                        N(0, STD^2)
//	uniform:B                         U(-B, B)
//	xavier_normal[:GAIN]              alias glorot_normal; GAIN defaults to 1
//	xavier_uniform[:GAIN]             alias glorot_uniform
//	kaiming_normal[:fan_in|fan_out]   alias he_normal; mode defaults to fan_in
//	kaiming_uniform[:fan_in|fan_out]  alias he_uniform
//	torch_default                     alias default; PyTorch's Conv2d and Linear
//
// The schemes are Init's. The returned Init has no fans; give it each
// parameter's with WithFans (Fans computes them from a weight's shape)
// before Fill.
func ParseInit(spec string) (Init, error) {
	spec = strings.TrimSpace(spec)
	in, err := parseInit(spec)
	if err != nil {
		return Init{}, fmt.Errorf("init %q: %w (examples: %s)", spec, err, initExamples)
	}
	return in, nil
}

func parseInit(spec string) (Init, error) {
	name, arg, hasArg := strings.Cut(spec, ":")
	name = strings.ToLower(strings.TrimSpace(name))
	arg = strings.TrimSpace(arg)
	if a, ok := initAliases[name]; ok {
		name = a
	}
	in := Init{Scheme: name}
	noArg := func() error {
		if hasArg {
			return fmt.Errorf("%s takes no argument", name)
		}
		return nil
	}
	var err error
	switch name {
	case "zeros", "ones", "torch_default":
		err = noArg()
	case "const", "normal", "uniform":
		what := map[string]string{"const": "value", "normal": "standard deviation", "uniform": "bound"}[name]
		if !hasArg {
			return Init{}, fmt.Errorf("%s needs a %s, as in %s:0.01", name, what, name)
		}
		in.Value, err = parseNum(name+" "+what, arg)
	case "xavier_normal", "xavier_uniform":
		if hasArg {
			in.Value, err = parseNum(name+" gain", arg)
			if err == nil && in.Value <= 0 {
				err = fmt.Errorf("%s gain %v must be > 0", name, in.Value)
			}
		}
	case "kaiming_normal", "kaiming_uniform":
		if hasArg {
			if arg != "fan_in" && arg != "fan_out" {
				return Init{}, fmt.Errorf("%s: unknown mode %q, want fan_in or fan_out", name, arg)
			}
			in.Mode = arg
		}
	case "":
		return Init{}, fmt.Errorf("empty scheme")
	default:
		return Init{}, fmt.Errorf("unknown scheme %q; known schemes are %s and the aliases he_normal, he_uniform, glorot_normal, glorot_uniform", name, strings.Join(initSchemes, ", "))
	}
	if err != nil {
		return Init{}, err
	}
	// The fans are not known yet; check the rest with stand-ins.
	if err := in.WithFans(1, 1).Validate(); err != nil {
		return Init{}, err
	}
	return in, nil
}

// WithFans returns in with its fans set, for a parameter whose layer has
// fanIn inputs and fanOut outputs per output position (see Fans).
func (in Init) WithFans(fanIn, fanOut int) Init {
	in.FanIn, in.FanOut = fanIn, fanOut
	return in
}

// Spec returns in in ParseInit's syntax, without the fans:
// ParseInit(in.Spec()) gives back in less its fans.
func (in Init) Spec() string {
	switch in.Scheme {
	case "const", "normal", "uniform":
		return in.Scheme + ":" + fmtFloat(in.Value)
	case "xavier_normal", "xavier_uniform":
		if in.Value != 0 {
			return in.Scheme + ":" + fmtFloat(in.Value)
		}
	case "kaiming_normal", "kaiming_uniform":
		if in.Mode != "" {
			return in.Scheme + ":" + in.Mode
		}
	}
	return in.Scheme
}

// Fans returns the fans of a weight of the given shape as PyTorch's
// _calculate_fan_in_and_fan_out computes them: for a shape [out, in, k...],
// fanIn = in * prod(k) and fanOut = out * prod(k), so a Linear weight
// [out, in] has fans in and out and a Conv2d weight [O, I, KH, KW] has
// I*KH*KW and O*KH*KW. A shape of fewer than two dimensions, such as a
// bias, has no fans of its own: Fans returns 0, 0, and the caller should
// use the fans of the layer's weight, as generated code does.
func Fans(shape []int) (fanIn, fanOut int) {
	if len(shape) < 2 {
		return 0, 0
	}
	field := 1
	for _, d := range shape[2:] {
		field *= d
	}
	return shape[1] * field, shape[0] * field
}
