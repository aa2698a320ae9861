package gemm

import "github.com/cnnc/cnnc/runtime/elem"

// useAsm reports whether the assembly kernels run. It is set once at
// start-up (see kernel_amd64.go) and switched only by tests.
var useAsm = asmSupported()

// zPanels is how many B panels side by side one AVX-512 micro-kernel
// multiplies, up to zPanelsMax; 0 where the CPU lacks AVX-512 and the
// driver runs the AVX2 or Go kernels. Like useAsm it is set once at
// start-up and switched only by tests.
var zPanels = initZPanels()

// zPanelsMax is codegen/asm.ZPanels.
const zPanelsMax = 4

func initZPanels() int {
	if avx512Supported() {
		return zPanelsMax
	}
	return 0
}

// A hint is where a kernel along a row of tiles hints a float into L2
// once every trip of its main loop (4 steps of k), moving on stride floats
// a trip: the operands of a weight gradient's update by rows, fetched
// while the rows are computed (see RowUpdate). The zero hint fetches
// nothing new: the kernel then hints its own A, already in L1.
type hint struct {
	at     uintptr
	stride int
}

// UsesAssembly reports whether this process runs the AVX2/FMA assembly
// kernels rather than the pure Go ones.
func UsesAssembly() bool { return useAsm }

// kernel computes C[0:rows, 0:panels*nr] = A*B, or += when acc is set,
// for the packed panels a (kc steps of mr floats) and b (panels B panels of
// kc steps of nr floats, one after another), a tile per B panel; rows of C
// are ldc floats apart. 1 <= rows <= mr, kc >= 1 and panels >= 1. One call
// for a row of tiles saves the calls per tile, which at a weight
// gradient's short k (the batch) cost a tenth of the product. The
// assembly hints h's floats into L2 as it goes.
func kernel(rows, kc, panels int, a, b, c []float32, ldc int, acc bool, h hint) {
	if useAsm {
		kernelAsm(rows, kc, panels, a, b, c, ldc, acc, h)
		return
	}
	for p := range panels {
		kernelGo(rows, kc, a, b[p*kc*nr:], c[p*nr:], ldc, acc)
	}
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

// An Epilogue is what a GEMM does to each element of C once it holds the
// whole product, while the micro-tile is in registers: the epilogue of a
// convolution or linear layer. The zero Epilogue does nothing.
type Epilogue struct {
	// RowBias, when not nil, holds m values: RowBias[i] is added to row i
	// of C (one bias per output channel of a convolution).
	RowBias []float32
	// ColBias, when not nil, holds n values: ColBias[j] is added to
	// column j (one bias per output feature of a linear layer), after
	// RowBias.
	ColBias []float32
	// ReLU sets each element to max(x, 0), last; as BiasReLU, it keeps
	// NaN and -0.
	ReLU bool
	// Tanh sets each element to tanh(x), last, with the bits of
	// elem.Tanh: a linear layer and the tanh after it in one pass over
	// C. At most one of ReLU and Tanh may be set.
	Tanh bool
}

// none reports whether ep does nothing.
func (ep *Epilogue) none() bool {
	return ep.RowBias == nil && ep.ColBias == nil && !ep.ReLU && !ep.Tanh
}

// kernelEpi is kernel followed by ep on the tile at row i, column j of
// the whole C.
func kernelEpi(rows, kc int, a, b, c []float32, ldc int, acc bool, ep *Epilogue, i, j int) {
	if useAsm {
		kernelEpiAsm(rows, kc, a, b, c, ldc, acc, ep, i, j)
		return
	}
	kernelGo(rows, kc, a, b, c, ldc, acc)
	ep.apply(c, ldc, rows, nr, i, j)
}

// apply runs ep on the rows x cols block of C at c (rows ldc apart),
// which is the block at row i, column j of the whole C.
func (ep *Epilogue) apply(c []float32, ldc, rows, cols, i, j int) {
	for r := range rows {
		row := c[r*ldc:][:cols]
		if ep.RowBias != nil {
			s := ep.RowBias[i+r]
			for x := range row {
				row[x] += s
			}
		}
		if ep.ColBias != nil {
			for x, s := range ep.ColBias[j:][:cols] {
				row[x] += s
			}
		}
		if ep.ReLU {
			for x, v := range row {
				if v < 0 {
					row[x] = 0
				}
			}
		}
	}
	ep.tanhRows(c, ldc, rows, cols)
}

// tanhRows applies ep's tanh, if it has one, to the rows x cols block of
// C at c, rows ldc apart: last in apply, and after a micro-kernel that does
// not (all but the transposed ones), on its tile while it is in L1.
func (ep *Epilogue) tanhRows(c []float32, ldc, rows, cols int) {
	if ep == nil || !ep.Tanh {
		return
	}
	for r := range rows {
		row := c[r*ldc:][:cols]
		elem.Tanh(row, row)
	}
}

// The flags of the epilogue kernels (codegen/asm.EpiAccumulate, EpiReLU,
// EpiTanh).
const (
	epiAccumulate = 1
	epiReLU       = 2
	epiTanh       = 4
)
