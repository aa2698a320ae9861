//go:build !amd64 || purego

package gemm

func asmSupported() bool    { return false }
func avx512Supported() bool { return false }

func kernelZD(panels, rows, kc int, a, x []float32, koffs, poffs []int32, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

func kernelD(rows, kc int, a, x []float32, koffs, poff []int32, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

func kernelB(rows, kc int, a, b []float32, ldb int, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

func kernelT(transA bool, rows, kc int, a []float32, lda int, b, c []float32, ldc int, prev, rowTab, colTab, pack []float32, flags int, h *ahead) {
	panic("gemm: no assembly kernels in this build")
}

func kernelN(transA bool, rows, kc int, a []float32, lda int, b, c []float32, ldc int, acc bool, h *ahead) {
	panic("gemm: no assembly kernels in this build")
}

func kernelI(rows, kc int, x []float32, koffs, poffs []int32, b, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

func kernelZI(panels, rows, kc int, x []float32, koffs, poffs []int32, b, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

func kernelZA(panels, rows, kc int, a []float32, lda int, transA bool, b, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int, h hint) {
	panic("gemm: no assembly kernels in this build")
}

func kernelZ(panels, rows, kc int, a, b, c []float32, ldc, cols int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

func kernelAsm(rows, kc, panels int, a, b, c []float32, ldc int, acc bool, h hint) {
	panic("gemm: no assembly kernels in this build")
}

func kernelP(rows, kc int, a []float32, stride int, b, c []float32, ldc int, acc bool) {
	panic("gemm: no assembly kernels in this build")
}

func kernelDown(rows, kc, tiles int, a, b, c []float32, ldc int, h hint) {
	panic("gemm: no assembly kernels in this build")
}

func gemvPanels(rows, k int, a []float32, stride int, x, y []float32) {
	panic("gemm: no assembly kernels in this build")
}

func kernelEpiAsm(rows, kc int, a, b, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	panic("gemm: no assembly kernels in this build")
}

// The generated vector helpers, which this build lacks; useAsm is false, so
// they are never called.

func axpy(alpha float32, x, y []float32) { panic("gemm: no assembly kernels in this build") }
func relu(x []float32)                   { panic("gemm: no assembly kernels in this build") }
func addScalar(x []float32, s float32)   { panic("gemm: no assembly kernels in this build") }
func addScalarReLU(x []float32, s float32) {
	panic("gemm: no assembly kernels in this build")
}
func addVec(x, v []float32)     { panic("gemm: no assembly kernels in this build") }
func addVecReLU(x, v []float32) { panic("gemm: no assembly kernels in this build") }

func packA6N(kc int, src *float32, ld int, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}
func packA6T(kc int, src *float32, ld int, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}
func packB16N(kc, panels int, src *float32, ld int, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}
func packB16Offs(kc, panels int, src *float32, koffs, poffs *int32, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}
func maxPool2x2Backward(dx, x, dy *float32, oh, ow, w int) {
	panic("gemm: no assembly kernels in this build")
}
func packB16Segs(kc, nseg int, src *float32, koffs, shifts, masks *int32, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}
func packB16TOffs(kc int, src *float32, koffs *int32, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}
func packB16T(kc int, src *float32, ld int, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}

func gemv4(k int, a *float32, lda int, x, y *float32) {
	panic("gemm: no assembly kernels in this build")
}
func gemv3(k int, a *float32, lda int, x, y *float32) {
	panic("gemm: no assembly kernels in this build")
}
func gemv2(k int, a *float32, lda int, x, y *float32) {
	panic("gemm: no assembly kernels in this build")
}
func gemv1(k int, a *float32, lda int, x, y *float32) {
	panic("gemm: no assembly kernels in this build")
}

func copyRows(dst, src *float32, rows, width, dstStride, srcStride int) {
	panic("gemm: no assembly kernels in this build")
}

func copyRowsZ(dst, src *float32, rows, width, dstStride, srcStride int) {
	panic("gemm: no assembly kernels in this build")
}

func maxPool2x2(dst, src *float32, oh, ow, w int) {
	panic("gemm: no assembly kernels in this build")
}

func addRows(dst, src *float32, rows, width, dstStride, srcStride int) {
	panic("gemm: no assembly kernels in this build")
}

func col2imZ(dst, col *float32, tab *int32, vecs, chans, dstStride, colStride int) {
	panic("gemm: no assembly kernels in this build")
}

func maxPool2x2Z(dst, src *float32, oh, ow, w int) {
	panic("gemm: no assembly kernels in this build")
}

func maxPool2x2BackwardZ(dx, x, dy *float32, oh, ow, w int) {
	panic("gemm: no assembly kernels in this build")
}

func packB16OffsZ(kc, panels int, src *float32, koffs, poffs *int32, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}

func packB16SegsZ(kc, nseg int, src *float32, koffs, shifts, masks *int32, dst *float32) {
	panic("gemm: no assembly kernels in this build")
}

func scaleShiftReLU(y, x []float32, a, b float32) {
	panic("gemm: no assembly kernels in this build")
}

func dotTile6x4(oh, ow int, a *float32, lda int, x *float32, koffs *int32, xs int, c *float32) {
	panic("gemm: no assembly kernels in this build")
}

func maxPool2x2ReLUBackward(dx, x, dy *float32, oh, ow, w int) {
	panic("gemm: no assembly kernels in this build")
}

func maxPool2x2ReLUBackwardZ(dx, x, dy *float32, oh, ow, w int) {
	panic("gemm: no assembly kernels in this build")
}

func col2imY(dst, col *float32, tab *int32, vecs, chans, dstStride, colStride int) {
	panic("gemm: no assembly kernels in this build")
}
