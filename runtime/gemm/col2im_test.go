package gemm

import (
	"fmt"
	"math"
	"testing"
)

// col2imRef is col2im as its definition reads: every entry of col added
// into dst at its position, taps in order.
func col2imRef(dst, col []float32, s Col2imShape) {
	clear(dst[:s.C*s.H*s.W])
	for c := range s.C {
		for p := range s.KH {
			for q := range s.KW {
				for oy := range s.OH {
					for ox := range s.OW {
						y, x := oy*s.SH+p*s.DH-s.PH, ox*s.SW+q*s.DW-s.PW
						if y < 0 || y >= s.H || x < 0 || x >= s.W {
							continue
						}
						dst[(c*s.H+y)*s.W+x] += col[((c*s.KH+p)*s.KW+q)*s.Cols()+oy*s.OW+ox]
					}
				}
			}
		}
	}
}

// outSize is a convolution's output size along one axis.
func outSize(in, k, stride, dil, pad int) int { return (in+2*pad-(k-1)*dil-1)/stride + 1 }

func TestCol2im(t *testing.T) {
	type geom struct {
		name                        string
		c, h, w, kh, kw, sh, sw, dh int
		dw, ph, pw                  int
	}
	geoms := []geom{
		{"lenet-conv2", 6, 14, 14, 5, 5, 1, 1, 1, 1, 0, 0},
		{"lenet-conv1", 1, 28, 28, 5, 5, 1, 1, 1, 1, 2, 2},
		{"vgg-32", 5, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1},
		{"odd-17", 7, 9, 17, 3, 3, 1, 1, 1, 1, 1, 1},
		{"7x7-stride2", 3, 15, 15, 7, 7, 2, 2, 1, 1, 3, 3},
		{"stride2-rows", 2, 11, 12, 3, 3, 2, 1, 1, 1, 1, 1},
		{"dilated", 3, 12, 13, 3, 3, 1, 1, 2, 2, 2, 2},
		{"1x1", 9, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0},
		{"wide-pad", 2, 6, 20, 3, 5, 1, 1, 1, 1, 2, 4},
	}
	kernelModes(t, func(t *testing.T) {
		for _, g := range geoms {
			s := Col2imShape{C: g.c, H: g.h, W: g.w, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw, PH: g.ph, PW: g.pw,
				OH: outSize(g.h, g.kh, g.sh, g.dh, g.ph), OW: outSize(g.w, g.kw, g.sw, g.dw, g.pw)}
			t.Run(g.name, func(t *testing.T) {
				col := make([]float32, s.Rows()*s.Cols())
				for i := range col {
					col[i] = float32(math.Sin(float64(i)*0.37)) * 3
				}
				n := s.C * s.H * s.W
				want := make([]float32, n)
				col2imRef(want, col, s)
				got := make([]float32, n+5)
				for i := range got {
					got[i] = float32(math.NaN())
				}
				Col2im(got, col, s)
				for i := range n {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("dst[%d] = %v, want %v", i, got[i], want[i])
					}
				}
				for i := n; i < len(got); i++ {
					if !math.IsNaN(float64(got[i])) {
						t.Fatalf("dst[%d] past the gradient written: %v", i, got[i])
					}
				}
			})
		}
	})
}

func TestCol2imPanics(t *testing.T) {
	s := Col2imShape{C: 2, H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: 1, PW: 1, OH: 4, OW: 4}
	for _, tc := range []struct {
		name     string
		dst, col int
		s        Col2imShape
	}{
		{"short dst", 31, 288, s},
		{"short col", 32, 287, s},
		{"no channels", 32, 288, Col2imShape{H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, OH: 4, OW: 4}},
		{"negative padding", 32, 288, Col2imShape{C: 2, H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PH: -1, OH: 4, OW: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("no panic")
				} else if msg := fmt.Sprint(r); len(msg) < 10 {
					t.Fatalf("panic %q says too little", msg)
				}
			}()
			Col2im(make([]float32, tc.dst), make([]float32, tc.col), tc.s)
		})
	}
}
