package gemm

// useAsm reports whether the assembly kernels run. It is set once at
// start-up (see kernel_amd64.go) and switched only by tests.
var useAsm = asmSupported()

// UsesAssembly reports whether this process runs the AVX2/FMA assembly
// kernels rather than the pure Go ones.
func UsesAssembly() bool { return useAsm }

// kernel computes C[0:rows, 0:nr] = A*B, or += when acc is set, for the
// packed panels a (kc steps of mr floats) and b (kc steps of nr floats); rows
// of C are ldc floats apart. 1 <= rows <= mr and kc >= 1.
func kernel(rows, kc int, a, b, c []float32, ldc int, acc bool) {
	if useAsm {
		kernelAsm(rows, kc, a, b, c, ldc, acc)
		return
	}
	kernelGo(rows, kc, a, b, c, ldc, acc)
}

// kernelGo is the pure Go micro-kernel. Each element sums its products in
// k order, as the assembly does, and adds C once at the end.
func kernelGo(rows, kc int, a, b, c []float32, ldc int, acc bool) {
	var t [mr][nr]float32
	a = a[:kc*mr]
	b = b[:kc*nr]
	for p := range kc {
		bp := (*[nr]float32)(b[p*nr:])
		ap := (*[mr]float32)(a[p*mr:])
		for i := range rows {
			ai := ap[i]
			ti := &t[i]
			for j := range nr {
				ti[j] += ai * bp[j]
			}
		}
	}
	for i := range rows {
		ci := (*[nr]float32)(c[i*ldc:])
		if acc {
			for j := range nr {
				ci[j] += t[i][j]
			}
		} else {
			*ci = t[i]
		}
	}
}
