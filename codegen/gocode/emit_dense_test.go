package gocode

import "testing"

// TestPixelMajor checks which convolutions' forward products run
// pixel-major: few channels over small outputs, whose channels would
// fill few tile rows over many panels of pixels, and not where the
// pixels' panels are whole or the channels would waste a tile's lanes.
func TestPixelMajor(t *testing.T) {
	tests := []struct {
		name string
		d    convGeom
		want bool
	}{
		{"lenet5 conv1: 6 channels", convGeom{C: 1, H: 28, W: 28, O: 6, OH: 28, OW: 28, G: 1, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, PH: 2, PW: 2}, false},
		{"lenet5 conv2: 16x10x10", convGeom{C: 6, H: 14, W: 14, O: 16, OH: 10, OW: 10, G: 1, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1}, true},
		{"grouped: 16 a group, 6x6", convGeom{C: 8, H: 8, W: 8, O: 32, OH: 6, OW: 6, G: 2, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1}, true},
		{"vggsmall conv2: rows of 32", convGeom{C: 32, H: 32, W: 32, O: 32, OH: 32, OW: 32, G: 1, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: 1, PW: 1}, false},
		{"vggsmall conv4: rows of 16", convGeom{C: 64, H: 16, W: 16, O: 64, OH: 16, OW: 16, G: 1, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: 1, PW: 1}, false},
		{"64 channels, 7x7", convGeom{C: 64, H: 7, W: 7, O: 64, OH: 7, OW: 7, G: 1, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: 1, PW: 1}, true},
		{"128 channels, 8x8", convGeom{C: 64, H: 8, W: 8, O: 128, OH: 8, OW: 8, G: 1, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: 1, PW: 1}, true},
		{"16 channels, 16x16", convGeom{C: 16, H: 16, W: 16, O: 16, OH: 16, OW: 16, G: 1, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: 1, PW: 1}, false},
		{"stride 2", convGeom{C: 6, H: 14, W: 14, O: 16, OH: 5, OW: 5, G: 1, KH: 5, KW: 5, SH: 2, SW: 2, DH: 1, DW: 1}, false},
		{"1x1", convGeom{C: 6, H: 10, W: 10, O: 16, OH: 10, OW: 10, G: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.d.pixelMajor(); got != tt.want {
			t.Errorf("%s: pixelMajor() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
