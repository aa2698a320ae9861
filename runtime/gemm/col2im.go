package gemm

import (
	"fmt"
	"sync"
)

// Col2imShape is the geometry of a convolution's col2im, the reverse of
// its im2col: the column matrix of one sample (and group) has a row
// k = (c*KH+p)*KW+q for each channel c of C and kernel tap (p, q), and a
// column j = oy*OW+ox for each output position, and its entry adds into
// the input gradient (C x H x W, not padded) at
//
//	y = oy*SH + p*DH - PH,   x = ox*SW + q*DW - PW
//
// where that lies inside; PH and PW are the padding at the top and left.
type Col2imShape struct {
	C, H, W                int
	KH, KW, SH, SW, DH, DW int
	PH, PW                 int
	OH, OW                 int
}

// Rows returns the rows of the column matrix, C*KH*KW.
func (s Col2imShape) Rows() int { return s.C * s.KH * s.KW }

// Cols returns the columns of the column matrix, OH*OW.
func (s Col2imShape) Cols() int { return s.OH * s.OW }

// Col2im writes the input gradient dst (C x H x W) of the column matrix
// col (s.Rows() x s.Cols()): each element is the sum of the entries that
// land on it, added in the order of their taps (p, q) starting from zero,
// and zero where none does. Every path gives the same bits. With the
// assembly kernels (AVX-512 or AVX2) and stride 1 across, each 16-float
// vector of dst is summed in registers through a table of masked loads and
// stored once; otherwise each tap adds its rows into the cleared dst. It
// panics if a slice is too short or the geometry is inconsistent.
func Col2im(dst, col []float32, s Col2imShape) {
	s.check()
	if need := s.C * s.H * s.W; len(dst) < need {
		panic(fmt.Sprintf("gemm: Col2im: len(dst) = %d < %d", len(dst), need))
	}
	if need := s.Rows() * s.Cols(); len(col) < need {
		panic(fmt.Sprintf("gemm: Col2im: len(col) = %d < %d", len(col), need))
	}
	if s.SW == 1 && useAsm {
		t := col2imTableFor(s)
		if avx512() {
			col2imZ(&dst[0], &col[0], &t.tab[0], t.vecs, s.C, s.H*s.W, s.KH*s.KW*s.Cols())
		} else {
			col2imY(&dst[0], &col[0], &t.tab[0], t.vecs, s.C, s.H*s.W, s.KH*s.KW*s.Cols())
		}
		return
	}
	dst = dst[:s.C*s.H*s.W]
	clear(dst)
	ohw := s.Cols()
	for c := range s.C {
		dc := dst[c*s.H*s.W:]
		for p := range s.KH {
			oy0, oy1 := span(s.OH, s.SH, p*s.DH-s.PH, s.H)
			for q := range s.KW {
				ox0, ox1 := span(s.OW, s.SW, q*s.DW-s.PW, s.W)
				if oy0 >= oy1 || ox0 >= ox1 {
					continue
				}
				row := col[((c*s.KH+p)*s.KW+q)*ohw+oy0*s.OW+ox0:]
				d := dc[(oy0*s.SH+p*s.DH-s.PH)*s.W+ox0*s.SW+q*s.DW-s.PW:]
				if s.SW == 1 {
					AddRows(d, row, oy1-oy0, ox1-ox0, s.SH*s.W, s.OW)
					continue
				}
				for i := range oy1 - oy0 {
					dr, sr := d[i*s.SH*s.W:], row[i*s.OW:][:ox1-ox0]
					for j, v := range sr {
						dr[j*s.SW] += v
					}
				}
			}
		}
	}
}

// span returns the outputs [o0, o1) of n, stride apart from shift, that
// land inside [0, size): o*stride + shift in range.
func span(n, stride, shift, size int) (o0, o1 int) {
	if shift < 0 {
		o0 = (-shift + stride - 1) / stride
	}
	if size-shift > 0 {
		o1 = min(n, (size-shift+stride-1)/stride)
	}
	return o0, max(o0, o1)
}

// check panics unless every size, stride and dilation of s is positive and
// the padding not negative.
func (s Col2imShape) check() {
	if s.C < 1 || s.H < 1 || s.W < 1 || s.KH < 1 || s.KW < 1 || s.SH < 1 || s.SW < 1 ||
		s.DH < 1 || s.DW < 1 || s.OH < 1 || s.OW < 1 || s.PH < 0 || s.PW < 0 {
		panic(fmt.Sprintf("gemm: Col2imShape %+v: every size, stride and dilation must be at least 1 and the padding not negative", s))
	}
}

// A col2imTable is the table col2imZ walks for one geometry (see
// codegen/asm.Col2im): per 16-float vector of a channel of dst, its offset
// and mask, then the masked source vectors of col that add into it, in tap
// order.
type col2imTable struct {
	tab  []int32
	vecs int
}

// col2imTables caches the tables by geometry; a model has a few, and
// Col2im runs per sample.
var col2imTables sync.Map // Col2imShape -> *col2imTable

func col2imTableFor(s Col2imShape) *col2imTable {
	if t, ok := col2imTables.Load(s); ok {
		return t.(*col2imTable)
	}
	t, _ := col2imTables.LoadOrStore(s, newCol2imTable(s))
	return t.(*col2imTable)
}

// newCol2imTable builds the table of a geometry with stride 1 across.
func newCol2imTable(s Col2imShape) *col2imTable {
	t := &col2imTable{}
	ohw := s.Cols()
	for y := range s.H {
		for x0 := 0; x0 < s.W; x0 += nr {
			lanes := min(nr, s.W-x0)
			t.tab = append(t.tab, int32(y*s.W+x0), int32(1<<lanes-1), 0)
			count := len(t.tab) - 1
			t.vecs++
			for p := range s.KH {
				// The output row whose tap p lands on row y.
				dy := y + s.PH - p*s.DH
				if dy < 0 || dy%s.SH != 0 || dy/s.SH >= s.OH {
					continue
				}
				oy := dy / s.SH
				for q := range s.KW {
					// Lane l is x = x0+l, read from ox = x0+l-shift.
					shift := q*s.DW - s.PW
					var mask int32
					for l := range lanes {
						if ox := x0 + l - shift; ox >= 0 && ox < s.OW {
							mask |= 1 << l
						}
					}
					if mask == 0 {
						continue
					}
					tap := (p*s.KW + q) * ohw
					t.tab = append(t.tab, int32(tap+oy*s.OW+x0-shift), mask)
					t.tab[count]++
				}
			}
		}
	}
	return t
}
