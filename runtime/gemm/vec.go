package gemm

import (
	"fmt"
	"math"
)

// Axpy sets y[i] += alpha*x[i] for i < len(x). It panics if y is shorter
// than x.
func Axpy(alpha float32, x, y []float32) {
	if len(y) < len(x) {
		panic(fmt.Sprintf("gemm: Axpy: len(y) = %d < len(x) = %d", len(y), len(x)))
	}
	if len(x) == 0 {
		return
	}
	if useAsm {
		axpy(alpha, x, y)
		return
	}
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// ScaleShiftReLU sets y[i] = max(x[i]*a + b, 0) for i < len(y), the affine
// map and ReLU that follow a batch norm, in one pass: the bits of Axpy(a,
// x, y) into a cleared y followed by BiasReLU's bias b and ReLU (so a
// product of -0 counts as +0). Like ReLU it leaves NaN and -0 as they are.
// It panics if x is shorter than y.
func ScaleShiftReLU(y, x []float32, a, b float32) {
	if len(x) < len(y) {
		panic(fmt.Sprintf("gemm: ScaleShiftReLU: len(x) = %d < len(y) = %d", len(x), len(y)))
	}
	if len(y) == 0 {
		return
	}
	if useAsm {
		scaleShiftReLU(y, x, a, b)
		return
	}
	x = x[:len(y)]
	for i, v := range x {
		t := v*a + 0
		t += b
		if t < 0 {
			t = 0
		}
		y[i] = t
	}
}

// ReLU sets x[i] = max(x[i], 0). Like "if x < 0 { x = 0 }", it leaves NaN
// and -0 as they are.
func ReLU(x []float32) {
	if len(x) == 0 {
		return
	}
	if useAsm {
		relu(x)
		return
	}
	reluGo(x)
}

func reluGo(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// BiasReLU is the epilogue of a convolution or linear layer on the m x n
// matrix C, rows ldc apart: it adds rowBias[i] to row i when rowBias is not
// nil (one bias per output channel, channels on rows), adds colBias[j] to
// column j when colBias is not nil (features on columns), and then applies
// ReLU when relu is set. Row bias is added before column bias.
func BiasReLU(m, n int, c []float32, ldc int, rowBias, colBias []float32, relu bool) {
	checkMatrix("C", m, n, c, ldc)
	if rowBias != nil && len(rowBias) < m {
		panic(fmt.Sprintf("gemm: BiasReLU: len(rowBias) = %d < m = %d", len(rowBias), m))
	}
	if colBias != nil && len(colBias) < n {
		panic(fmt.Sprintf("gemm: BiasReLU: len(colBias) = %d < n = %d", len(colBias), n))
	}
	if m == 0 || n == 0 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		switch {
		case rowBias != nil && colBias != nil:
			addScalarAny(row, rowBias[i], false)
			addVecAny(row, colBias, relu)
		case rowBias != nil:
			addScalarAny(row, rowBias[i], relu)
		case colBias != nil:
			addVecAny(row, colBias, relu)
		case relu:
			ReLU(row)
		}
	}
}

func addScalarAny(x []float32, s float32, relu bool) {
	switch {
	case useAsm && relu:
		addScalarReLU(x, s)
	case useAsm:
		addScalar(x, s)
	default:
		for i := range x {
			x[i] += s
		}
		if relu {
			reluGo(x)
		}
	}
}

func addVecAny(x, v []float32, relu bool) {
	switch {
	case useAsm && relu:
		addVecReLU(x, v)
	case useAsm:
		addVec(x, v)
	default:
		v = v[:len(x)]
		for i := range x {
			x[i] += v[i]
		}
		if relu {
			reluGo(x)
		}
	}
}

// CopyRows copies rows rows of width floats: row r of src, which starts at
// r*srcStride, to r*dstStride in dst. It is im2col's and padding's copy of
// image rows, a few dozen floats each, for which a copy per row costs a
// call of runtime.memmove. The rows must not overlap. It panics if a slice
// is too short.
func CopyRows(dst, src []float32, rows, width, dstStride, srcStride int) {
	if rows <= 0 || width <= 0 {
		return
	}
	checkRows("CopyRows", dst, src, rows, width, dstStride, srcStride)
	if avx512() {
		copyRowsZ(&dst[0], &src[0], rows, width, dstStride, srcStride)
		return
	}
	if useAsm {
		copyRows(&dst[0], &src[0], rows, width, dstStride, srcStride)
		return
	}
	for r := range rows {
		copy(dst[r*dstStride:r*dstStride+width], src[r*srcStride:r*srcStride+width])
	}
}

// MaxPool2x2 pools a plane with 2x2 windows and stride 2: dst[i*ow+j] is
// the largest of src[2i*w+2j], src[2i*w+2j+1] and the two below them, for
// i < oh and j < ow, rows of src w floats apart. A window holding a NaN
// gives a NaN. It panics if a slice is too short.
func MaxPool2x2(dst, src []float32, oh, ow, w int) {
	if oh <= 0 || ow <= 0 {
		return
	}
	if len(dst) < oh*ow {
		panic(fmt.Sprintf("gemm: MaxPool2x2: len(dst) = %d < %d", len(dst), oh*ow))
	}
	if need := (2*oh-1)*w + 2*ow; 2*ow > w || len(src) < need {
		panic(fmt.Sprintf("gemm: MaxPool2x2: %d x %d outputs need %d floats of src in rows of %d >= %d, have %d", oh, ow, need, w, 2*ow, len(src)))
	}
	if avx512() {
		maxPool2x2Z(&dst[0], &src[0], oh, ow, w)
		return
	}
	if useAsm {
		maxPool2x2(&dst[0], &src[0], oh, ow, w)
		return
	}
	for i := range oh {
		r0, r1 := src[2*i*w:][:2*ow], src[(2*i+1)*w:][:2*ow]
		row := dst[i*ow:][:ow]
		for j := range row {
			row[j] = max(r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1])
		}
	}
}

// MaxPool2x2Backward is MaxPool2x2's backward: for each window i, j it
// sets the window's four elements of dx (laid out as src) to 0 but one,
// which gets dy[i*ow+j]: the first in row-major order equal to the
// window's maximum, or the last where a NaN makes none equal. It writes
// only the windows' elements, so a row or column past 2*oh or 2*ow keeps
// what dx held. It panics if a slice is too short.
func MaxPool2x2Backward(dx, x, dy []float32, oh, ow, w int) {
	maxPool2x2Back(dx, x, dy, oh, ow, w, false)
}

// MaxPool2x2ReLUBackward is MaxPool2x2Backward through the ReLU whose
// output x is: it then sets to 0 each element of dx where x's bits are
// not above 0 as an int32, as ReLUBackward would on dx.
func MaxPool2x2ReLUBackward(dx, x, dy []float32, oh, ow, w int) {
	maxPool2x2Back(dx, x, dy, oh, ow, w, true)
}

func maxPool2x2Back(dx, x, dy []float32, oh, ow, w int, relu bool) {
	if oh <= 0 || ow <= 0 {
		return
	}
	if len(dy) < oh*ow {
		panic(fmt.Sprintf("gemm: MaxPool2x2Backward: len(dy) = %d < %d", len(dy), oh*ow))
	}
	if need := (2*oh-1)*w + 2*ow; 2*ow > w || len(x) < need || len(dx) < need {
		panic(fmt.Sprintf("gemm: MaxPool2x2Backward: %d x %d windows need %d floats of x and dx in rows of %d >= %d, have %d and %d",
			oh, ow, need, w, 2*ow, len(x), len(dx)))
	}
	switch {
	case avx512() && relu:
		maxPool2x2ReLUBackwardZ(&dx[0], &x[0], &dy[0], oh, ow, w)
		return
	case avx512():
		maxPool2x2BackwardZ(&dx[0], &x[0], &dy[0], oh, ow, w)
		return
	case useAsm && relu:
		maxPool2x2ReLUBackward(&dx[0], &x[0], &dy[0], oh, ow, w)
		return
	case useAsm:
		maxPool2x2Backward(&dx[0], &x[0], &dy[0], oh, ow, w)
		return
	}
	for i := range oh {
		r0, r1 := x[2*i*w:][:2*ow], x[(2*i+1)*w:][:2*ow]
		d0, d1 := dx[2*i*w:][:2*ow], dx[(2*i+1)*w:][:2*ow]
		for j, g := range dy[i*ow:][:ow] {
			a, b, c, d := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
			m := max(a, b, c, d)
			// The first equal to m, as conditional moves: random data
			// would mispredict branches.
			k := 3
			if c == m {
				k = 2
			}
			if b == m {
				k = 1
			}
			if a == m {
				k = 0
			}
			var v [4]float32
			v[k] = g
			if relu {
				for q, e := range [4]float32{a, b, c, d} {
					if int32(math.Float32bits(e)) <= 0 {
						v[q] = 0
					}
				}
			}
			d0[2*j], d0[2*j+1], d1[2*j], d1[2*j+1] = v[0], v[1], v[2], v[3]
		}
	}
}

// AddRows adds rows rows of width floats: row r of src, which starts at
// r*srcStride, to the one at r*dstStride in dst. It is col2im's sum of a
// kernel tap's rows into the input gradient. The rows must not overlap.
// It panics if a slice is too short.
func AddRows(dst, src []float32, rows, width, dstStride, srcStride int) {
	if rows <= 0 || width <= 0 {
		return
	}
	checkRows("AddRows", dst, src, rows, width, dstStride, srcStride)
	if useAsm {
		addRows(&dst[0], &src[0], rows, width, dstStride, srcStride)
		return
	}
	for r := range rows {
		d := dst[r*dstStride:][:width]
		for i, v := range src[r*srcStride:][:width] {
			d[i] += v
		}
	}
}

// checkRows panics if dst or src is too short for rows rows of width
// floats, stride floats apart.
func checkRows(fn string, dst, src []float32, rows, width, dstStride, srcStride int) {
	if need := (rows-1)*dstStride + width; len(dst) < need {
		panic(fmt.Sprintf("gemm: %s: len(dst) = %d < %d", fn, len(dst), need))
	}
	if need := (rows-1)*srcStride + width; len(src) < need {
		panic(fmt.Sprintf("gemm: %s: len(src) = %d < %d", fn, len(src), need))
	}
}

// transpose sets dst[j*ldd+i] = src[i*lds+j] for i < rows and j < cols,
// four rows of src at a time, so that each cache line of dst takes four
// floats a visit.
func transpose(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = src[(rows-1)*lds+cols-1]
	_ = dst[(cols-1)*ldd+rows-1]
	i := 0
	for ; i+4 <= rows; i += 4 {
		s0, s1, s2, s3 := src[i*lds:][:cols], src[(i+1)*lds:][:cols], src[(i+2)*lds:][:cols], src[(i+3)*lds:][:cols]
		for j := range cols {
			d := dst[j*ldd+i:][:4]
			d[0], d[1], d[2], d[3] = s0[j], s1[j], s2[j], s3[j]
		}
	}
	for ; i < rows; i++ {
		for j, v := range src[i*lds:][:cols] {
			dst[j*ldd+i] = v
		}
	}
}
