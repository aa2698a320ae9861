package augment

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec    string
		c, h, w int
		want    Pipeline
	}{
		{"", 1, 28, 28, nil},
		{"none", 1, 28, 28, nil},
		{"flip", 3, 32, 32, Pipeline{HFlip{P: 0.5}}},
		{"hflip:1,vflip:0.25", 3, 32, 32, Pipeline{HFlip{P: 1}, VFlip{P: 0.25}}},
		{"flip, crop:4", 3, 32, 32, Pipeline{HFlip{P: 0.5}, Crop{Pad: 4}}},
		{"scale:0.8", 3, 32, 32, Pipeline{ResizedCrop{MinScale: 0.8, MinRatio: 0.75, MaxRatio: 4.0 / 3}}},
		{"scale:0.08:0.5:2", 3, 32, 32, Pipeline{ResizedCrop{MinScale: 0.08, MinRatio: 0.5, MaxRatio: 2}}},
		{"rotate:20,translate:0.1", 1, 28, 28, Pipeline{RandomRotate{Degrees: 20}, RandomTranslate{Frac: 0.1}}},
		{"jitter:0.05", 3, 32, 32, Pipeline{Jitter{0.05, 0.05, 0.05, 0.05}}},
		{"jitter:0.8", 1, 28, 28, Pipeline{Jitter{0.8, 0.8, 0.8, 0.5}}},
		{"jitter:0.4:0.3:0.2:0.1", 3, 32, 32, Pipeline{Jitter{0.4, 0.3, 0.2, 0.1}}},
		{"jitter:0.4:0.3:0:0", 1, 28, 28, Pipeline{Jitter{0.4, 0.3, 0, 0}}},
		{"flip,vflip,crop:4,scale:0.8,rotate:20,translate:0.1,jitter:0.05", 3, 32, 32, Pipeline{
			HFlip{P: 0.5}, VFlip{P: 0.5}, Crop{Pad: 4}, ResizedCrop{MinScale: 0.8, MinRatio: 0.75, MaxRatio: 4.0 / 3},
			RandomRotate{Degrees: 20}, RandomTranslate{Frac: 0.1}, Jitter{0.05, 0.05, 0.05, 0.05},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := Parse(tt.spec, tt.c, tt.h, tt.w)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
			again, err := Parse(p.String(), tt.c, tt.h, tt.w)
			require.NoError(t, err, "String() = %q", p.String())
			assert.Equal(t, p, again, "round trip through %q", p.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		spec    string
		c, h, w int
		err     string
	}{
		{"blur", 1, 28, 28, `augment "blur": unknown transform "blur"; known transforms are flip, vflip, crop, scale, rotate, translate and jitter (examples: flip,crop:4`},
		{"flip,,crop:4", 1, 28, 28, "empty transform; separate transforms with single commas"},
		{"flip:2", 1, 28, 28, "flip probability 2 must be in [0, 1]"},
		{"flip:0.5:1", 1, 28, 28, "flip takes an optional probability, such as flip or flip:0.5"},
		{"crop", 1, 28, 28, "crop takes a padding in pixels, such as crop:4"},
		{"crop:1.5", 1, 28, 28, `crop padding "1.5" is not a whole number of pixels`},
		{"crop:40", 1, 28, 28, "crop padding 40 must be in [0, 28], the image's smaller side"},
		{"scale:0", 3, 32, 32, "scale minimum scale must be > 0"},
		{"scale:1.5", 3, 32, 32, "scale minimum scale 1.5 must be in [0, 1]"},
		{"scale:0.5:2:1", 3, 32, 32, "scale maximum aspect ratio 1 must be in [2,"},
		{"scale:0.5:2", 3, 32, 32, "scale takes a minimum scale and optional aspect ratio bounds"},
		{"rotate:x", 1, 28, 28, `rotate degrees "x" is not a number`},
		{"rotate:200", 1, 28, 28, "rotate degrees 200 must be in [0, 180]"},
		{"translate:-0.1", 1, 28, 28, "translate fraction -0.1 must be in [0, 1]"},
		{"jitter", 1, 28, 28, "jitter takes one amount or four"},
		{"jitter:0.1:0.1", 1, 28, 28, "jitter takes one amount or four"},
		{"jitter:0.1:0.1:0.1:0.6", 3, 28, 28, "jitter hue 0.6 must be in [0, 0.5]"},
		{"jitter:0.1:0.1:0.1:0.1", 1, 28, 28, "jitter saturation and hue need 3 channels, the images have 1; use jitter:B:C:0:0"},
		{"flip", 0, 28, 28, "image shape 0x28x28 must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := Parse(tt.spec, tt.c, tt.h, tt.w)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}
