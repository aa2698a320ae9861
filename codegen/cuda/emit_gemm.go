package cuda

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
	cudart "github.com/cnnc/cnnc/runtime/cuda"
)

// A gemm describes one matrix product C = A * B as cnnc_gemm_tile wants it
// (see common.cu): convolutions as implicit GEMMs whose A or B is read
// straight from the image, linear layers as plain ones.
type gemm struct {
	bm, bn, tm, tn int
	nc             int // columns of C
	aKFast, bKFast bool
	members        string // the struct's data members
	a, b, store    string // bodies of a(m, k), b(k, j), store(m, j, v)
	// store4, if set, is the body of store4(m, j, v0, v1, v2, v3), which
	// stores rows m to m+3 of column j (m a multiple of 4) at once: see
	// cnnc_gemm_tile.
	store4 string
	// tf32 runs the product on the tensor cores (cnnc_gemm_tile_tf32).
	tf32 bool
}

// convTile sets the tile of a convolution's product of at most maxM rows
// and nc columns: on the tensor cores if the model is compiled with TF32.
func (q *gemm) convTile(g *generator, maxM, nc int) {
	if !g.cfg.TF32 {
		q.bm, q.bn, q.tm, q.tn = tileFor(maxM, nc)
		return
	}
	q.tf32 = true
	q.bm, q.bn, q.tm, q.tn = tileForTF32(maxM, nc)
}

// tileForTF32 chooses the tile of a product on the tensor cores: 32, 64
// or 128 rows by 8 to 64 columns (see cnnc_gemm_tile_tf32), and a thread's
// share of its outputs.
func tileForTF32(maxM, nc int) (bm, bn, tm, tn int) {
	switch {
	case maxM >= 16384:
		bm = 128
	case maxM <= 32:
		bm = 32
	default:
		bm = 64
	}
	bn = 64
	for bn > 8 && bn/2 >= nc {
		bn /= 2
	}
	// A warp's 32 rows by min(bn, 32) columns are 2 x wn/8 products of
	// 16x8, of which a lane holds 2 rows and 2 columns: 4 rows and wn/4
	// columns in all, which makes threads() the tile's warps times 32.
	return bm, bn, 4, min(bn, 32) / 4
}

// tile returns the device function that computes a tile of q.
func (q *gemm) tile() string {
	if q.tf32 {
		return "cnnc_gemm_tile_tf32"
	}
	return "cnnc_gemm_tile"
}

// setStore4 gives a convolution's product, whose C rows are pixels of
// NCHW planes of hw pixels and whose columns are channels, a store4 that
// writes 4 neighbouring pixels of a channel with one 16-byte store, where
// every run of 4 rows lies in one plane and starts 16-byte aligned: index
// is the C expression of the offset of (m, j) in out, after prelude,
// value that of the value stored from v (a C variable name). The tile
// needs runs of 4 rows a thread (TM a multiple of 4), which the tensor
// cores' tile has not.
func (q *gemm) setStore4(hw, outOffset int, prelude, index string, value func(v string) string) {
	if q.tf32 || hw%4 != 0 || outOffset%4 != 0 || q.tm%4 != 0 {
		return
	}
	q.store4 = prelude + "cnnc_f4 r;\n" +
		"r.x = " + value("v0") + ";\nr.y = " + value("v1") + ";\nr.z = " + value("v2") + ";\nr.w = " + value("v3") + ";\n" +
		"*reinterpret_cast<cnnc_f4*>(out + " + index + ") = r;\n"
}

const bk = 16 // depth of one step through k

// tileFor chooses the tile of a product with at most maxM rows and nc
// columns, and the outputs each thread holds: 32 to 256 threads, each with
// runs of 4 rows and columns where it can, which it reads from shared
// memory 4 at a time (see cnnc_gemm_tile). A large product of 32 to 63
// columns takes 128 rows a tile, 8 by 2 outputs a thread; one of 64 or
// more, 64 rows, 4 by 8. On an H200, VGG-small's inference convolutions
// at batch 256 took so 220 us (32 channels of 32x32) and 177 us (64 of
// 16x16), against 256 and 227 us with 128 rows and 8 by 4 or 8 by 8
// outputs a thread, which needed 165 registers.
func tileFor(maxM, nc int) (bm, bn, tm, tn int) {
	switch {
	case nc >= 64:
		bn, tn = 64, 8
	case nc >= 32:
		bn, tn = 32, 4
	case nc >= 16:
		bn, tn = 16, 4
	default:
		bn, tn = 8, 2
	}
	switch {
	case maxM >= 16384 && nc >= 64:
		bm, tm = 64, 4
	case maxM >= 16384 && nc >= 32:
		bm, tm, tn = 128, 8, 2
	case maxM >= 16384:
		bm, tm = 128, 8
	case maxM <= 32:
		bm, tm = 32, 4
	default:
		bm, tm = 64, 4
	}
	return bm, bn, tm, tn
}

// epilogue returns the value a product of op stores: v, or for the fused
// ops its ReLU or tanh.
func epilogue(v string, op ir.Op) string {
	switch op {
	case ir.OpConv2DReLU, ir.OpLinearReLU:
		return "fmaxf(" + v + ", 0.0f)"
	case ir.OpConv2DTanh, ir.OpLinearTanh:
		return "tanhf(" + v + ")"
	}
	return v
}

func (q *gemm) threads() int { return (q.bm / q.tm) * (q.bn / q.tn) }

// structText returns the C++ struct KNAME_gemm describing q.
func (q *gemm) structText() string {
	b2i := map[bool]int{false: 0, true: 1}
	store4 := ""
	if q.store4 != "" {
		store4 = "  __device__ __forceinline__ void store4(int m, int j, float v0, float v1, float v2, float v3) const {\n" +
			indent(indent(q.store4)) + "  }\n"
	}
	return expand(`struct KNAME_gemm {
  static constexpr int BM = {BM}, BN = {BN}, BK = {BK}, TM = {TM}, TN = {TN}, NC = {NC}, AKFAST = {AK}, BKFAST = {BKF}, STORE4 = {S4};
{MEMBERS}  __device__ __forceinline__ float a(int m, int k) const {
{A}  }
  __device__ __forceinline__ float b(int k, int j) const {
{B}  }
  __device__ __forceinline__ void store(int m, int j, float v) const {
{STORE}  }
{STORE4}};
`, "BM", q.bm, "BN", q.bn, "BK", bk, "TM", q.tm, "TN", q.tn, "NC", q.nc, "AK", b2i[q.aKFast], "BKF", b2i[q.bKFast],
		"S4", b2i[q.store4 != ""], "MEMBERS", indent(q.members), "A", indent(indent(q.a)), "B", indent(indent(q.b)),
		"STORE", indent(indent(q.store)), "STORE4", store4)
}

// maxTaps is the most terms of a convolution's product (input channels
// times kernel taps) whose offsets a block keeps in a table in shared
// memory (8 bytes each).
const maxTaps = 1024

// tapTable returns the kernel code that fills the shared tables toff and
// tpos for the K terms of a convolution's product, term k = (c*KH + p)*KW
// + q for channel c (named ch in off) and tap (p, q), with T threads:
// toff[k] is off, the term's offset in the operand, and tpos[k] packs the
// tap's row and column displacements p*DH and q*DW as (p*DH)<<16 | q*DW
// (see hasTapTable).
func tapTable(T, K int, ch, off string, vals []any) string {
	return expand(`__shared__ int toff[{K}], tpos[{K}];
for (int k = threadIdx.x; k < {K}; k += {T}) {
  const int q = k % {KW}, t2 = k / {KW}, p = t2 % {KH}, {CH} = t2 / {KH};
  toff[k] = {OFF};
  tpos[k] = (p * {DH}) << 16 | q * {DW};
}
__syncthreads();
`, append(vals, "K", K, "T", T, "CH", ch, "OFF", expand(off, vals...))...)
}

// hasTapTable reports whether a convolution's product of K terms reads
// its taps' offsets from a table (tapTable): one that fits in shared
// memory beside the tiles, with displacements that fit in 16 bits.
func hasTapTable(K int, w *ir.Node, a ir.Attrs) bool {
	return K <= maxTaps && (w.Shape[2]-1)*a.Dilation[0] < 1<<15 && (w.Shape[3]-1)*a.Dilation[1] < 1<<16
}

// splitK chooses how to split a reduction of at most kmax terms over
// chunks of kc, so that blocks blocks per chunk fill the GPU: nch chunks at
// most (1: no split). A reduction of at most 4*minChunk terms is not split,
// and a chunk has at least minChunk terms.
func splitK(blocks, kmax, minChunk int) (kc, nch int) {
	chunks := 1
	if kmax > 4*minChunk {
		chunks = max(1, min(ceilDiv(528, blocks), ceilDiv(kmax, minChunk)))
	}
	kc = roundUp(ceilDiv(kmax, chunks), bk)
	return kc, ceilDiv(kmax, kc)
}

// convVals returns a convolution's shapes and attributes as template values.
func convVals(x, w, y *ir.Node, a ir.Attrs) (vals []any, groups, og, cg, kk int) {
	C, H, W := x.Shape[1], x.Shape[2], x.Shape[3]
	O, CG, KH, KW := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	OH, OW := y.Shape[2], y.Shape[3]
	G := max(a.Groups, 1)
	vals = []any{"C", C, "H", H, "W", W, "O", O, "CG", CG, "OG", O / G, "KH", KH, "KW", KW, "KK", KH * KW,
		"OH", OH, "OW", OW, "OHW", OH * OW, "SH", a.Stride[0], "SW", a.Stride[1], "PH", a.Pad[0], "PW", a.Pad[1],
		"DH", a.Dilation[0], "DW", a.Dilation[1], "CGKK", CG * KH * KW}
	return vals, G, O / G, CG, CG * KH * KW
}

func emitConv2D(g *generator, gp *graphPlan, n *ir.Node) error {
	x, w := n.Args[0], n.Args[1]
	vals, G, OG, _, K := convVals(x, w, n, n.Attrs)
	OHW := n.Shape[2] * n.Shape[3]
	q := &gemm{nc: OG, bKFast: true}
	q.convTile(g, n.Shape[0]*OHW, OG)
	q.members = "const float* x;\nconst float* w;\nconst float* bias;\nfloat* out;\nint grp;\n"
	table := hasTapTable(K, w, n.Attrs)
	if table {
		// The taps' offsets from a table in shared memory: only the
		// output pixel's part of the address is left to compute, once.
		q.a = expand(`const int ow = m % {OW}, t = m / {OW}, oh = t % {OH}, nn = t / {OH};
const int ih0 = oh * {SH} - {PH}, iw0 = ow * {SW} - {PW}, tp = tpos[k];
const int ih = ih0 + (tp >> 16), iw = iw0 + (tp & 0xffff);
return ((unsigned)ih < {H}u && (unsigned)iw < {W}u) ? x[(nn * {C} + grp * {CG}) * {H} * {W} + ih0 * {W} + iw0 + toff[k]] : 0.0f;
`, vals...)
	} else {
		q.a = expand(`const int ow = m % {OW}, t = m / {OW}, oh = t % {OH}, nn = t / {OH};
const int q = k % {KW}, t2 = k / {KW}, p = t2 % {KH}, cg = t2 / {KH};
const int ih = oh * {SH} - {PH} + p * {DH}, iw = ow * {SW} - {PW} + q * {DW};
return (ih >= 0 && ih < {H} && iw >= 0 && iw < {W}) ? x[((nn * {C} + grp * {CG} + cg) * {H} + ih) * {W} + iw] : 0.0f;
`, vals...)
	}
	q.b = expand("return w[(grp * {OG} + j) * {CGKK} + k];\n", vals...)
	bias := " + bias[o]"
	params := []kparam{in("x", gp.buf[x]), in("w", gp.buf[w])}
	init := "x, w, bias, out"
	if len(n.Args) > 2 {
		params = append(params, in("bias", gp.buf[n.Args[2]]))
	} else {
		bias, init = "", "x, w, nullptr, out"
	}
	where := expand(`const int ow = m % {OW}, t = m / {OW}, oh = t % {OH}, nn = t / {OH};
const int o = grp * {OG} + j;
`, vals...)
	index := expand("((nn * {O} + o) * {OH} + oh) * {OW} + ow", vals...)
	q.store = where + "out[" + index + "] = " + epilogue("v"+bias, n.Op) + ";\n"
	q.setStore4(OHW, gp.buf[n], where, index, func(v string) string { return epilogue(v+bias, n.Op) })
	nt := ceilDiv(OG, q.bn)
	prologue := ""
	if table {
		q.members = fixMembers(q.members + "const int* toff;\nconst int* tpos;\n")
		init += ", toff, tpos"
		prologue = tapTable(q.threads(), K, "cg", "(cg * {H} + p * {DH}) * {W} + q * {DW}", vals)
	}
	body := prologue + expand(`const int grp = blockIdx.y / {NT};
const KNAME_gemm g{{INIT}, grp};
{TILE}(g, n * {OHW}, blockIdx.x * {BM}, (blockIdx.y % {NT}) * {BN}, 0, {K});
`, "TILE", q.tile(), "NT", nt, "INIT", init, "OHW", OHW, "BM", q.bm, "BN", q.bn, "K", K)
	params = append(params, out("out", gp.buf[n]), nParam)
	grid := [3]cudart.Dim{{PerSample: OHW, Div: q.bm}, {Fixed: G * nt}, one}
	g.kernel(gp, n, "", fmt.Sprintf("convolution as an implicit GEMM, M = n*%d output pixels, N = %d channels per group (%d groups), K = %d", OHW, OG, G, K),
		q.structText(), grid, q.threads(), params, body)
	return nil
}

func emitConv2DBackwardData(g *generator, gp *graphPlan, n *ir.Node) error {
	dy, w := n.Args[0], n.Args[1]
	vals, G, OG, CG, _ := convVals(n, w, dy, n.Attrs)
	HW := n.Shape[2] * n.Shape[3]
	K := OG * w.Shape[2] * w.Shape[3]
	q := &gemm{nc: CG, bKFast: true}
	q.convTile(g, n.Shape[0]*HW, CG)
	q.members = "const float* dy;\nconst float* w;\nfloat* out;\nint grp;\n"
	table := hasTapTable(K, w, n.Attrs) && n.Attrs.Stride[0] == 1 && n.Attrs.Stride[1] == 1
	init, prologue := "dy, w, out", ""
	if table {
		// Stride 1: the taps' offsets from a table in shared memory.
		q.members = fixMembers(q.members + "const int* toff;\nconst int* tpos;\n")
		init += ", toff, tpos"
		prologue = tapTable(q.threads(), K, "og", "og * {OHW} - p * {DH} * {OW} - q * {DW}", vals)
		q.a = expand(`const int iw = m % {W}, t = m / {W}, ih = t % {H}, nn = t / {H};
const int i0 = ih + {PH}, j0 = iw + {PW}, tp = tpos[k];
const int i = i0 - (tp >> 16), j = j0 - (tp & 0xffff);
return ((unsigned)i < {OH}u && (unsigned)j < {OW}u) ? dy[(nn * {O} + grp * {OG}) * {OHW} + i0 * {OW} + j0 + toff[k]] : 0.0f;
`, vals...)
	} else {
		q.a = expand(`const int iw = m % {W}, t = m / {W}, ih = t % {H}, nn = t / {H};
const int q = k % {KW}, t2 = k / {KW}, p = t2 % {KH}, og = t2 / {KH};
const int hh = ih + {PH} - p * {DH}, ww = iw + {PW} - q * {DW};
if (hh < 0 || ww < 0 || hh % {SH} != 0 || ww % {SW} != 0) return 0.0f;
const int i = hh / {SH}, j = ww / {SW};
return (i < {OH} && j < {OW}) ? dy[((nn * {O} + grp * {OG} + og) * {OH} + i) * {OW} + j] : 0.0f;
`, vals...)
	}
	q.b = expand("return w[((grp * {OG} + k / {KK}) * {CG} + j) * {KK} + k % {KK}];\n", vals...)
	where := expand("const int iw = m % {W}, t = m / {W}, ih = t % {H}, nn = t / {H};\n", vals...)
	index := expand("((nn * {C} + grp * {CG} + j) * {H} + ih) * {W} + iw", vals...)
	q.store = where + "out[" + index + "] = v;\n"
	q.setStore4(HW, gp.buf[n], where, index, func(v string) string { return v })
	nt := ceilDiv(CG, q.bn)
	body := prologue + expand(`const int grp = blockIdx.y / {NT};
const KNAME_gemm g{{INIT}, grp};
{TILE}(g, n * {HW}, blockIdx.x * {BM}, (blockIdx.y % {NT}) * {BN}, 0, {K});
`, "TILE", q.tile(), "NT", nt, "INIT", init, "HW", HW, "BM", q.bm, "BN", q.bn, "K", K)
	params := []kparam{in("dy", gp.buf[dy]), in("w", gp.buf[w]), out("out", gp.buf[n]), nParam}
	grid := [3]cudart.Dim{{PerSample: HW, Div: q.bm}, {Fixed: G * nt}, one}
	g.kernel(gp, n, "", fmt.Sprintf("gradient of a convolution with respect to its input as an implicit GEMM, M = n*%d input pixels, N = %d channels per group (%d groups), K = %d", HW, CG, G, K),
		q.structText(), grid, q.threads(), params, body)
	return nil
}

func emitConv2DBackwardFilter(g *generator, gp *graphPlan, n *ir.Node) error {
	x, dy := n.Args[0], n.Args[1]
	vals, G, OG, _, NC := convVals(x, n, dy, n.Attrs)
	OHW := dy.Shape[2] * dy.Shape[3]
	q := &gemm{nc: NC, aKFast: true, bKFast: true}
	q.convTile(g, OG, NC)
	q.members = "const float* x;\nconst float* dy;\nint grp;\n"
	q.a = expand(`const int oj = k % {OW}, t = k / {OW}, oi = t % {OH}, nn = t / {OH};
return dy[((nn * {O} + grp * {OG} + m) * {OH} + oi) * {OW} + oj];
`, vals...)
	q.b = expand(`const int oj = k % {OW}, t = k / {OW}, oi = t % {OH}, nn = t / {OH};
const int q = j % {KW}, t2 = j / {KW}, p = t2 % {KH}, cg = t2 / {KH};
const int ih = oi * {SH} - {PH} + p * {DH}, iw = oj * {SW} - {PW} + q * {DW};
return (ih >= 0 && ih < {H} && iw >= 0 && iw < {W}) ? x[((nn * {C} + grp * {CG} + cg) * {H} + ih) * {W} + iw] : 0.0f;
`, vals...)
	nt := ceilDiv(NC, q.bn)
	mt := ceilDiv(OG, q.bm)
	kc, nch := splitK(mt*G*nt, dy.Shape[0]*OHW, 256)
	total := n.Shape.Size()
	doc := fmt.Sprintf("gradient of a convolution with respect to its weight as an implicit GEMM, M = %d channels per group (%d groups), N = %d, K = n*%d", OG, G, NC, OHW)
	g.splitGemm(gp, n, q, doc, []kparam{in("x", gp.buf[x]), in("dy", gp.buf[dy])}, "x, dy", split{
		rows: fmt.Sprint(OG), rowTiles: cudart.Dim{Fixed: mt}, yTiles: G * nt, nt: nt, kc: kc, nch: nch,
		zdim: cudart.Dim{PerSample: OHW, Div: kc}, kexpr: fmt.Sprintf("n * %d", OHW),
		index: expand("(grp * {OG} + m) * {NC} + j", "OG", OG, "NC", NC), total: total,
	})
	return nil
}

// A split describes where a product's reduction may be split into chunks
// and what it stores.
type split struct {
	rows     string     // C expression of the number of rows of C
	rowTiles cudart.Dim // blocks along the rows
	yTiles   int        // blocks along the columns, groups included
	nt       int        // column tiles per group
	kc, nch  int        // the chunks of the reduction: nch chunks of kc terms
	zdim     cudart.Dim // blocks along the reduction when nch > 1
	kexpr    string     // C expression of the length of the reduction
	index    string     // C expression of element (m, j) in the result
	total    int        // elements of the result at full batch
	// result is the C expression of the value stored from the sum v for
	// column j; nil stores v.
	result    func(v, j string) string
	sumParams []kparam // the arguments result reads, for the kernel that adds the chunks
}

// splitGemm emits a product whose reduction is split over chunks of kc
// terms when nch > 1: each chunk's tile goes to a scratch buffer and a
// second kernel adds the chunks in order and stores the result.
func (g *generator) splitGemm(gp *graphPlan, n *ir.Node, q *gemm, doc string, params []kparam, init string, sp split) {
	result := sp.result
	if result == nil {
		result = func(v, _ string) string { return v }
	}
	var part int
	zdim := sp.zdim
	if sp.nch > 1 {
		part = g.alloc(sp.nch * sp.total)
		q.members += "float* part;\n"
		q.store = expand("part[blockIdx.z * {TOTAL} + {INDEX}] = v;\n", "TOTAL", sp.total, "INDEX", sp.index)
		params = append(params, out("part", part))
		init += ", part"
	} else {
		q.members += "float* out;\n"
		q.store = expand("out[{INDEX}] = {RESULT};\n", "INDEX", sp.index, "RESULT", result("v", "j"))
		params = append(params, out("out", gp.buf[n]))
		init += ", out"
		zdim = one
	}
	body := expand(`const int grp = blockIdx.y / {NT};
const int k0 = blockIdx.z * {KC}, k1 = cnnc_min(k0 + {KC}, {KEXPR});
const KNAME_gemm g{{INIT}, grp};
{TILE}(g, {M}, blockIdx.x * {BM}, (blockIdx.y % {NT}) * {BN}, k0, k1);
`, "TILE", q.tile(), "NT", sp.nt, "KC", sp.kc, "KEXPR", sp.kexpr, "INIT", init, "M", sp.rows, "BM", q.bm, "BN", q.bn)
	params = append(params, nParam)
	grid := [3]cudart.Dim{sp.rowTiles, {Fixed: sp.yTiles}, zdim}
	suffix := ""
	if sp.nch > 1 {
		suffix = "_chunks"
		doc += fmt.Sprintf(", split over chunks of %d terms", sp.kc)
	}
	q.members = fixMembers(q.members)
	g.kernel(gp, n, suffix, doc, q.structText(), grid, q.threads(), params, body)
	if sp.nch > 1 {
		g.elementwise(gp, n, "_sum", fmt.Sprintf("adds the chunks of %s in order", n.Op),
			append([]kparam{in("part", part)}, sp.sumParams...),
			expand("const int nch = ({KEXPR} + {KC} - 1) / {KC};\nfloat s = 0.0f;\nfor (int ch = 0; ch < nch; ++ch) s += part[ch * {TOTAL} + i];\nout[i] = {RESULT};",
				"KEXPR", sp.kexpr, "KC", sp.kc, "TOTAL", sp.total, "RESULT", result("s", fmt.Sprintf("(i %% %d)", q.nc))))
	}
}

// fixMembers puts the int grp member last, where the initialisers expect
// it.
func fixMembers(m string) string {
	const grp = "int grp;\n"
	for i := 0; i+len(grp) <= len(m); i++ {
		if m[i:i+len(grp)] == grp {
			return m[:i] + m[i+len(grp):] + grp
		}
	}
	return m + grp
}

func emitLinear(g *generator, gp *graphPlan, n *ir.Node) error {
	x, w := n.Args[0], n.Args[1]
	F, O := x.Shape[1], w.Shape[0]
	q := &gemm{nc: O, aKFast: true, bKFast: true}
	q.bm, q.bn, q.tm, q.tn = tileFor(n.Shape[0], O)
	q.members = "const float* x;\nconst float* w;\nconst float* bias;\n"
	q.a = expand("return x[m * {F} + k];\n", "F", F)
	q.b = expand("return w[j * {F} + k];\n", "F", F)
	params := []kparam{in("x", gp.buf[x]), in("w", gp.buf[w])}
	init := "x, w, bias"
	var sumParams []kparam
	result := func(v, _ string) string { return epilogue(v, n.Op) }
	if len(n.Args) > 2 {
		sumParams = []kparam{in("bias", gp.buf[n.Args[2]])}
		params = append(params, sumParams...)
		result = func(v, j string) string { return epilogue(v+" + bias["+j+"]", n.Op) }
	} else {
		init = "x, w, nullptr"
	}
	g.rowGemm(gp, n, q, fmt.Sprintf("linear layer as a GEMM, M = n, N = %d, K = %d", O, F), params, init, F, result, sumParams)
	return nil
}

func emitLinearBackwardData(g *generator, gp *graphPlan, n *ir.Node) error {
	dy, w := n.Args[0], n.Args[1]
	O, F := w.Shape[0], w.Shape[1]
	q := &gemm{nc: F, aKFast: true, bKFast: false}
	q.bm, q.bn, q.tm, q.tn = tileFor(n.Shape[0], F)
	q.members = "const float* dy;\nconst float* w;\n"
	q.a = expand("return dy[m * {O} + k];\n", "O", O)
	q.b = expand("return w[k * {F} + j];\n", "F", F)
	g.rowGemm(gp, n, q, fmt.Sprintf("gradient of a linear layer with respect to its input, M = n, N = %d, K = %d", F, O),
		[]kparam{in("dy", gp.buf[dy]), in("w", gp.buf[w])}, "dy, w", O, nil, nil)
	return nil
}

// rowGemm emits a product whose rows are the samples (or n's rows, if it
// does not carry the batch), over K terms, split over chunks where its
// tiles alone would leave most of the GPU idle.
func (g *generator) rowGemm(gp *graphPlan, n *ir.Node, q *gemm, doc string, params []kparam, init string, K int,
	result func(v, j string) string, sumParams []kparam) {
	nt, mt := ceilDiv(q.nc, q.bn), ceilDiv(n.Shape[0], q.bm)
	kc, nch := splitK(mt*nt, K, 64)
	sp := split{rows: "n", rowTiles: cudart.Dim{PerSample: 1, Div: q.bm}, yTiles: nt, nt: nt, kc: kc, nch: nch,
		zdim: cudart.Dim{Fixed: K, Div: kc}, kexpr: fmt.Sprint(K), index: expand("m * {NC} + j", "NC", q.nc),
		total: n.Shape.Size(), result: result, sumParams: sumParams}
	if !gp.batched[n] {
		sp.rows, sp.rowTiles = fmt.Sprint(n.Shape[0]), cudart.Dim{Fixed: n.Shape[0], Div: q.bm}
	}
	g.splitGemm(gp, n, q, doc, params, init, sp)
}

func emitLinearBackwardWeight(g *generator, gp *graphPlan, n *ir.Node) error {
	x, dy := n.Args[0], n.Args[1]
	F, O := x.Shape[1], dy.Shape[1]
	q := &gemm{nc: F}
	q.bm, q.bn, q.tm, q.tn = tileFor(O, F)
	q.members = "const float* x;\nconst float* dy;\n"
	q.a = expand("return dy[k * {O} + m];\n", "O", O)
	q.b = expand("return x[k * {F} + j];\n", "F", F)
	nt, mt := ceilDiv(F, q.bn), ceilDiv(O, q.bm)
	kmax := x.Shape[0]
	kc, nch := splitK(mt*nt, kmax, 256)
	kexpr, zdim := "n", cudart.Dim{PerSample: 1, Div: kc}
	if !gp.batched[x] {
		kexpr, zdim = fmt.Sprint(kmax), cudart.Dim{Fixed: kmax, Div: kc}
	}
	g.splitGemm(gp, n, q, fmt.Sprintf("gradient of a linear layer with respect to its weight, M = %d, N = %d, K = n", O, F),
		[]kparam{in("x", gp.buf[x]), in("dy", gp.buf[dy])}, "x, dy", split{
			rows: fmt.Sprint(O), rowTiles: cudart.Dim{Fixed: mt}, yTiles: nt, nt: nt, kc: kc, nch: nch, zdim: zdim, kexpr: kexpr,
			index: expand("m * {F} + j", "F", F), total: n.Shape.Size(),
		})
	return nil
}
