package gemm

// The packing routines copy a block of op(A) or op(B) into the panel layout
// the micro-kernel reads, padding partial panels with zeros.

// packAN packs rows [i0, i0+mc) x columns [p0, p0+kc) of A (not transposed,
// A(i, p) = a[i*lda+p]) into panels of mr rows: panel q holds, for each p,
// the mr floats of rows i0+q*mr .. i0+q*mr+mr-1.
func packAN(dst, a []float32, lda, i0, p0, mc, kc int) {
	for ip := 0; ip < mc; ip += mr {
		d := dst[ip*kc : (ip+mr)*kc]
		rows := min(mr, mc-ip)
		base := (i0+ip)*lda + p0
		if rows == mr && useAsm {
			_ = a[base+(mr-1)*lda+kc-1] // the rows packA6N reads
			packA6N(kc, &a[base], lda, &d[0])
			continue
		}
		if useAsm && kc <= partKMax {
			// The tile's rows, then zeros, for packA6N: the loop below
			// costs as much as the whole tiles of a small product.
			var part [mr * partKMax]float32
			for r := range rows {
				copy(part[r*kc:(r+1)*kc], a[base+r*lda:])
			}
			packA6N(kc, &part[0], kc, &d[0])
			continue
		}
		if rows == mr {
			r0 := a[base : base+kc]
			r1 := a[base+lda : base+lda+kc]
			r2 := a[base+2*lda : base+2*lda+kc]
			r3 := a[base+3*lda : base+3*lda+kc]
			r4 := a[base+4*lda : base+4*lda+kc]
			r5 := a[base+5*lda : base+5*lda+kc]
			for p := range kc {
				t := (*[mr]float32)(d[p*mr:])
				t[0], t[1], t[2], t[3], t[4], t[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		clear(d)
		for r := range rows {
			src := a[base+r*lda : base+r*lda+kc]
			for p, v := range src {
				d[p*mr+r] = v
			}
		}
	}
}

// partKMax bounds the k steps packAN takes a partial tile of through
// packA6N: kcBlock's default.
const partKMax = 256

// packAT is packAN for a transposed A: A(i, p) = a[p*lda+i].
func packAT(dst, a []float32, lda, i0, p0, mc, kc int) {
	for ip := 0; ip < mc; ip += mr {
		d := dst[ip*kc : (ip+mr)*kc]
		rows := min(mr, mc-ip)
		base := p0*lda + i0 + ip
		if rows == mr && useAsm {
			_ = a[base+(kc-1)*lda+mr-1] // the rows packA6T reads
			packA6T(kc, &a[base], lda, &d[0])
			continue
		}
		if rows == mr {
			for p := range kc {
				copy(d[p*mr:p*mr+mr], a[base+p*lda:base+p*lda+mr])
			}
			continue
		}
		clear(d)
		for p := range kc {
			copy(d[p*mr:p*mr+rows], a[base+p*lda:base+p*lda+rows])
		}
	}
}

// packBN packs rows [p0, p0+kc) x columns [j0, j0+cols) of B (not
// transposed, B(p, j) = b[p*ldb+j]) into one panel of nr columns: for each
// p, nr floats, zero past cols.
func packBN(dst, b []float32, ldb, p0, j0, kc, cols int) {
	base := p0*ldb + j0
	if cols == nr {
		for p := range kc {
			*(*[nr]float32)(dst[p*nr:]) = *(*[nr]float32)(b[base+p*ldb:])
		}
		return
	}
	clear(dst)
	for p := range kc {
		copy(dst[p*nr:p*nr+cols], b[base+p*ldb:base+p*ldb+cols])
	}
}

// packBT is packBN for a transposed B: B(p, j) = b[j*ldb+p]. A partial
// panel is copied, row by row, into scratch (at least nr*kc floats), whose
// missing rows are zero, and transposed from there: the assembly transposes
// whole panels only, and a scattered store per element costs more than the
// copy.
func packBT(dst, b []float32, ldb, p0, j0, kc, cols int, scratch []float32) {
	if useAsm {
		src, ld := b[j0*ldb+p0:], ldb
		if cols < nr {
			for j := range cols {
				copy(scratch[j*kc:(j+1)*kc], b[(j0+j)*ldb+p0:])
			}
			clear(scratch[cols*kc : nr*kc])
			src, ld = scratch, kc
		}
		_ = src[(nr-1)*ld+kc-1] // the rows packB16T reads
		packB16T(kc, &src[0], ld, &dst[:kc*nr][0])
		return
	}
	if cols < nr {
		clear(dst)
	}
	for j := range cols {
		src := b[(j0+j)*ldb+p0 : (j0+j)*ldb+p0+kc]
		for p, v := range src {
			dst[p*nr+j] = v
		}
	}
}
