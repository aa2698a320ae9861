package augment

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseExamples is the help text of Parse's errors.
const parseExamples = "flip,crop:4 or flip,scale:0.8,rotate:15,translate:0.1,jitter:0.2"

// Parse parses the trainer's -augment flag into a Pipeline for images of c
// channels of h x w pixels. A spec is a comma-separated list of transforms,
// applied in the order given; "" and "none" give an empty Pipeline.
//
//	flip[:P]              HFlip: mirror left-right with probability P (0.5);
//	                      hflip is the same
//	vflip[:P]             VFlip: mirror top-bottom with probability P (0.5)
//	crop:PAD              Crop: pad PAD zero pixels on each side, crop back
//	                      to h x w at a random offset (0 <= PAD <= min(h, w))
//	scale:S[:R1:R2]       ResizedCrop: crop a random window of S to 1 of the
//	                      area, aspect ratio in [R1, R2] (3/4 to 4/3), resize
//	                      back to h x w bilinearly (0 < S <= 1)
//	rotate:D              RandomRotate: rotate by a uniform angle in [-D, D]
//	                      degrees (0 <= D <= 180)
//	translate:F           RandomTranslate: shift by up to F of the width and
//	                      height (0 <= F <= 1)
//	jitter:J              Jitter: brightness, contrast, saturation in
//	                      [1-J, 1+J], hue shift in [-J, J] (at most 0.5);
//	                      saturation and hue only for 3 channels
//	jitter:B:C:S:H        Jitter with each amount given (S and H need c = 3)
//
// Example: "flip,crop:4" is the classic CIFAR-10 augmentation.
func Parse(spec string, c, h, w int) (Pipeline, error) {
	if c < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("augment %q: image shape %dx%dx%d must be positive", spec, c, h, w)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "none" {
		return nil, nil
	}
	var p Pipeline
	for _, item := range strings.Split(spec, ",") {
		t, err := parseTransform(strings.TrimSpace(item), c, h, w)
		if err != nil {
			return nil, fmt.Errorf("augment %q: %w (examples: %s)", spec, err, parseExamples)
		}
		p = append(p, t)
	}
	return p, nil
}

func parseTransform(item string, c, h, w int) (Transform, error) {
	name, argStr, _ := strings.Cut(item, ":")
	var args []string
	if argStr != "" {
		args = strings.Split(argStr, ":")
	}
	nargs := func(n ...int) error {
		for _, k := range n {
			if len(args) == k {
				return nil
			}
		}
		return fmt.Errorf("%s takes %s", name, usage[name])
	}
	num := func(i int, what string, lo, hi float64) (float64, error) {
		x, err := strconv.ParseFloat(strings.TrimSpace(args[i]), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("%s %s %q is not a number", name, what, args[i])
		}
		if x < lo || x > hi {
			return 0, fmt.Errorf("%s %s %v must be in [%v, %v]", name, what, x, lo, hi)
		}
		return x, nil
	}
	switch name {
	case "flip", "hflip", "vflip":
		if err := nargs(0, 1); err != nil {
			return nil, err
		}
		p := 0.5
		if len(args) == 1 {
			var err error
			if p, err = num(0, "probability", 0, 1); err != nil {
				return nil, err
			}
		}
		if name == "vflip" {
			return VFlip{P: p}, nil
		}
		return HFlip{P: p}, nil
	case "crop":
		if err := nargs(1); err != nil {
			return nil, err
		}
		pad, err := strconv.Atoi(strings.TrimSpace(args[0]))
		if err != nil {
			return nil, fmt.Errorf("crop padding %q is not a whole number of pixels", args[0])
		}
		if pad < 0 || pad > min(h, w) {
			return nil, fmt.Errorf("crop padding %d must be in [0, %d], the image's smaller side", pad, min(h, w))
		}
		return Crop{Pad: pad}, nil
	case "scale":
		if err := nargs(1, 3); err != nil {
			return nil, err
		}
		s, err := num(0, "minimum scale", 0, 1)
		if err != nil {
			return nil, err
		}
		if s == 0 {
			return nil, fmt.Errorf("scale minimum scale must be > 0")
		}
		t := ResizedCrop{MinScale: s, MinRatio: 3.0 / 4, MaxRatio: 4.0 / 3}
		if len(args) == 3 {
			if t.MinRatio, err = num(1, "minimum aspect ratio", 0, math.MaxFloat64); err != nil {
				return nil, err
			}
			if t.MaxRatio, err = num(2, "maximum aspect ratio", t.MinRatio, math.MaxFloat64); err != nil {
				return nil, err
			}
			if t.MinRatio == 0 {
				return nil, fmt.Errorf("scale minimum aspect ratio must be > 0")
			}
		}
		return t, nil
	case "rotate":
		if err := nargs(1); err != nil {
			return nil, err
		}
		d, err := num(0, "degrees", 0, 180)
		return RandomRotate{Degrees: d}, err
	case "translate":
		if err := nargs(1); err != nil {
			return nil, err
		}
		f, err := num(0, "fraction", 0, 1)
		return RandomTranslate{Frac: f}, err
	case "jitter":
		if err := nargs(1, 4); err != nil {
			return nil, err
		}
		if len(args) == 1 {
			j, err := num(0, "amount", 0, math.MaxFloat64)
			return Jitter{Brightness: j, Contrast: j, Saturation: j, Hue: min(j, 0.5)}, err
		}
		var t Jitter
		var err error
		if t.Brightness, err = num(0, "brightness", 0, math.MaxFloat64); err != nil {
			return nil, err
		}
		if t.Contrast, err = num(1, "contrast", 0, math.MaxFloat64); err != nil {
			return nil, err
		}
		if t.Saturation, err = num(2, "saturation", 0, math.MaxFloat64); err != nil {
			return nil, err
		}
		if t.Hue, err = num(3, "hue", 0, 0.5); err != nil {
			return nil, err
		}
		if c != 3 && (t.Saturation != 0 || t.Hue != 0) {
			return nil, fmt.Errorf("jitter saturation and hue need 3 channels, the images have %d; use jitter:B:C:0:0", c)
		}
		return t, nil
	case "":
		return nil, fmt.Errorf("empty transform; separate transforms with single commas")
	}
	return nil, fmt.Errorf("unknown transform %q; known transforms are flip, vflip, crop, scale, rotate, translate and jitter", name)
}

// usage gives each transform's arguments for Parse's errors.
var usage = map[string]string{
	"flip":      "an optional probability, such as flip or flip:0.5",
	"hflip":     "an optional probability, such as hflip or hflip:0.5",
	"vflip":     "an optional probability, such as vflip or vflip:0.5",
	"crop":      "a padding in pixels, such as crop:4",
	"scale":     "a minimum scale and optional aspect ratio bounds, such as scale:0.8 or scale:0.08:0.75:1.33",
	"rotate":    "a maximum angle in degrees, such as rotate:15",
	"translate": "a maximum shift as a fraction of the size, such as translate:0.1",
	"jitter":    "one amount or four (brightness:contrast:saturation:hue), such as jitter:0.2 or jitter:0.4:0.4:0.4:0.1",
}
