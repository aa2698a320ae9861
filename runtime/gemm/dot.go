package gemm

// SgemmIm2colTDot computes what SgemmIm2colT computes, C = A*Bᵀ (or C +=
// A*Bᵀ when accumulate is set) for the im2col matrix B that b describes,
// on the calling goroutine, as dot products: the weight gradient of a
// convolution with few output channels (m) and long rows, such as a first
// layer's, where SgemmIm2colT's micro-kernels have few rows of C to reuse
// each packed panel and packing the transposed matrix costs as much as the
// product.
//
// With AVX-512, at stride 1, the pixels of an output row and of the
// sample's row each tap reads lie side by side, and dotTile6x4 sums 6 rows
// of A against 4 rows of B, 16 pixels at a time, reading both where they
// are. The sums run in another order than SgemmIm2colT's, so the last bits
// may differ; elsewhere it is SgemmIm2colT.
func SgemmIm2colTDot(m int, a []float32, lda int, b Im2col, c []float32, ldc int, accumulate bool) {
	if !avx512() || b.SW != 1 {
		SgemmIm2colT(nil, m, a, lda, b, c, ldc, accumulate)
		return
	}
	b.check()
	n, k := b.Rows(), b.Cols()
	checkMatrix("A", m, k, a, lda)
	checkMatrix("C", m, n, c, ldc)
	if m == 0 {
		return
	}
	kOff := tablesFor(&b).kOff
	x := b.X[:b.C*b.H*b.W]
	var tile [dotRows * dotCols]float32
	var ko [dotCols]int32
	var g *driver
	if m%dotRows != 0 {
		g = getDriver(1)
		defer putDriver(g)
	}
	for i0 := 0; i0 < m; i0 += dotRows {
		rows, ld := a[i0*lda:], lda
		if i0+dotRows > m {
			// The last rows, and copies of the last in place of those
			// past m, whose sums are not stored.
			g.wideC = aligned(g.wideC, dotRows*k)
			for i := range dotRows {
				copy(g.wideC[i*k:(i+1)*k], a[min(i0+i, m-1)*lda:])
			}
			rows, ld = g.wideC, k
		}
		_ = rows[(dotRows-1)*ld+k-1] // what the kernel reads
		for j0 := 0; j0 < n; j0 += dotCols {
			for j := range ko {
				ko[j] = kOff[min(j0+j, n-1)]
			}
			dotTile6x4(b.OH, b.OW, &rows[0], ld, &x[0], &ko[0], b.SH*b.W, &tile[0])
			for i := i0; i < min(i0+dotRows, m); i++ {
				row := c[i*ldc+j0 : i*ldc+min(j0+dotCols, n)]
				sums := tile[(i-i0)*dotCols:]
				for j := range row {
					if accumulate {
						row[j] += sums[j]
					} else {
						row[j] = sums[j]
					}
				}
			}
		}
	}
}
