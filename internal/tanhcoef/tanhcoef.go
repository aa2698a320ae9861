// Package tanhcoef holds the constants of the float32 tanh that runtime/elem
// computes, in Go and in the assembly that codegen/asm generates, so that
// both read them from one place.
//
// The approximation is Eigen's generic_fast_tanh_float: for |x| below Tiny
// tanh(x) = x; otherwise x is clamped to [-Clamp, Clamp] and
//
//	tanh(x) = x*P(x²) / Q(x²)
//
// with P of degree 6 (coefficients P[0] for x⁰ to P[6] for x¹²) and Q of
// degree 3, both evaluated by Horner's rule with a separate rounding per
// multiply and add. At Clamp the quotient rounds to 1.
package tanhcoef

// Bounds of the approximation.
const (
	Tiny  float32 = 0.0004
	Clamp float32 = 7.90531110763549805
)

// Coefficients of the numerator and the denominator, lowest degree first.
var (
	P = [7]float32{
		4.89352455891786e-03,
		6.37261928875436e-04,
		1.48572235717979e-05,
		5.12229709037114e-08,
		-8.60467152213735e-11,
		2.00018790482477e-13,
		-2.76076847742355e-16,
	}
	Q = [4]float32{
		4.89352518554385e-03,
		2.26843463243900e-03,
		1.18534705686654e-04,
		1.19825839466702e-06,
	}
)
