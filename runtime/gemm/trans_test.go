package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/cnnc/cnnc/codegen/asm"
)

// TestAheadCoversNextTile checks the hints that the transposed path's
// kernel calls give for the next tile: over the calls of a tile they hint
// every cache line of the next tile that the tile before does not hold
// (all of them without transA), and nothing outside that tile but, without
// transA, up to 15 floats just before it.
func TestAheadCoversNextTile(t *testing.T) {
	if hintTrip != asm.DefaultGEMMOptions.Unroll {
		t.Fatalf("hintTrip is %d, but the kernels hint once every %d steps", hintTrip, asm.DefaultGEMMOptions.Unroll)
	}
	shapes := []struct {
		transA       bool
		m, n, k, ldb int
	}{
		{false, 64, 500, 500, 500}, // the MLP's forward: W's rows
		{false, 64, 500, 784, 784}, // its first layer: four blocks of k, the last short
		{false, 32, 20, 70, 75},
		{false, 144, 7, 33, 40},   // a last tile of one row
		{true, 64, 500, 500, 500}, // the MLP's backward-data: W's columns
		{true, 64, 500, 244, 500}, // and its last block of k (splitK)
		{true, 80, 13, 40, 16},    // more trips than hints
		{true, 64, 8, 12, 8},
	}
	for _, s := range shapes {
		size := (s.n-1)*s.ldb + s.k
		if s.transA {
			size = (s.k-1)*s.ldb + s.n
		}
		// at(r, c) is the index of A(r, c), row r of the tile's rows.
		at := func(r, c int) int {
			if s.transA {
				return c*s.ldb + r
			}
			return r*s.ldb + c
		}
		// The tile's calls, as trans makes them: per panel of A's rows,
		// one per block of k.
		var calls []int
		for range ceilDiv(s.m, nr) {
			for pc := 0; pc < s.k; pc += kcBlock {
				calls = append(calls, min(kcBlock, s.k-pc))
			}
		}
		trips := tileTrips(s.m, s.k)
		sum := 0
		for _, kc := range calls {
			sum += kc / hintTrip
		}
		if sum != trips {
			t.Fatalf("m=%d k=%d: tileTrips gives %d trips, the tile's calls make %d", s.m, s.k, trips, sum)
		}
		big := make([]float32, size+16)
		for shift := range 4 { // where b starts within a cache line
			b := big[shift : shift+size : shift+size]
			base := uintptr(unsafe.Pointer(&b[0]))
			line := func(i int) uintptr { return (base + uintptr(4*i)) / 64 }
			// Tile 0 is no tile's next one.
			for tile := 1; tile <= ceilDiv(s.n, mr); tile++ {
				name := fmt.Sprintf("transA=%v m=%d n=%d k=%d ldb=%d shift=%d tile=%d", s.transA, s.m, s.n, s.k, s.ldb, shift, tile)
				h := newAhead(b, s.ldb, s.k, s.n, tile, s.transA, trips)
				i := tile * mr
				rows := min(mr, s.n-i)
				lo, hi := -1, -1 // the tile's span of b
				if i < s.n {
					lo, hi = at(i, 0), at(i+rows-1, s.k-1)
				}
				hinted := map[uintptr]bool{}
				for _, kc := range calls {
					p, stride := h.call(kc)
					for j := range kc / hintTrip {
						idx := (int(p-base) + 4*j*stride) / 4
						if lo < 0 {
							if idx != 0 {
								t.Fatalf("%s: hint at b[%d] for a tile past the end", name, idx)
							}
							continue
						}
						// Without transA the first hint may lie up to 15
						// floats before the tile.
						before := 15
						if s.transA {
							before = 0
						}
						if idx < lo-before || idx > hi {
							t.Fatalf("%s: hint at b[%d], outside the tile's span [%d, %d]", name, idx, lo, hi)
						}
						hinted[line(idx)] = true
					}
				}
				if lo < 0 {
					continue
				}
				for r := i; r < i+rows; r++ {
					for c := range s.k {
						l := line(at(r, c))
						// With transA, the tile before, columns i-6 to
						// i-1, holds the lines it shares with this one.
						held := s.transA && line(at(i-1, c)) == l
						if !hinted[l] && !held {
							t.Fatalf("%s: the line of A(%d, %d) is not hinted", name, r, c)
						}
					}
				}
			}
		}
	}
}

// TestTransRows checks that a product with more rows than mcBlock that
// could run transposed gives, split into transposed products of a few
// panels of rows (transRows), the bits of the packed path, reached here
// by accumulating into zeros: with the biases (the row bias sliced for
// each product) and ReLU, B transposed or not, on pools of every size.
func TestTransRows(t *testing.T) {
	if !asmSupported() || avx512() {
		t.Skip("the transposed products take the AVX2 kernels")
	}
	keepBlocks(t)
	pools := testPools(t, 0, 2, 3)
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ mc, m, n, k int }{
		{32, 40, 50, 30}, {32, 100, 33, 300}, {mcBlock, 300, 120, 400}, {mcBlock, 256, 500, 500},
	} {
		mcBlock = tc.mc
		for _, transB := range []bool{false, true} {
			p := &problem{m: tc.m, n: tc.n, k: tc.k, transB: transB, padB: 3, padC: 3}
			p.init(uint64(tc.m + tc.k))
			ep := Epilogue{RowBias: randSlice(r, p.m), ColBias: randSlice(r, p.n), ReLU: true}
			cl := call{m: p.m, k: p.k, transB: transB, ldb: p.ldb}
			if rows := cl.transRows(); rows == 0 || rows > mcBlock || rows%nr != 0 {
				t.Fatalf("%v: transRows = %d, want whole panels up to mcBlock %d", p, rows, mcBlock)
			}
			want := make([]float32, len(p.c))
			SgemmEpi(nil, false, transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, want, p.ldc, true, ep)
			for _, pool := range pools {
				got := append([]float32(nil), p.c...)
				SgemmEpi(pool, false, transB, p.m, p.n, p.k, p.a, p.lda, p.b, p.ldb, got, p.ldc, false, ep)
				for i := range p.m {
					for j := range p.n {
						x := i*p.ldc + j
						if math.Float32bits(got[x]) != math.Float32bits(want[x]) {
							t.Fatalf("%v, mcBlock %d: C[%d, %d] = %v, the packed path gives %v", p, mcBlock, i, j, got[x], want[x])
						}
					}
				}
			}
		}
	}
}

// TestHandoff checks SgemmHandoff on a chain of three linear layers: the
// same bits as SgemmEpi with every pool, whether or not the products run
// transposed; with AVX2, the panels it hands on are those packTrans packs
// (rows past m zero), and the next product reads them rather than C.
// Elsewhere it hands nothing on, nor does a product with a row bias.
func TestHandoff(t *testing.T) {
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		pools := testPools(t, 0, 2, 3)
		for _, m := range []int{64, 20, 5} {
			sizes := []int{37, 50, 23, 9}
			x := randSlice(r, m*sizes[0])
			var ws, biases [][]float32
			for l := 1; l < len(sizes); l++ {
				ws = append(ws, randSlice(r, sizes[l]*sizes[l-1]))
				biases = append(biases, randSlice(r, sizes[l]))
			}
			eps := func(l int) Epilogue {
				return []Epilogue{{ColBias: biases[0], Tanh: true}, {ColBias: biases[1], ReLU: true}, {}}[l]
			}
			// want[l] is layer l's output by SgemmEpi.
			var want [][]float32
			in := x
			for l, w := range ws {
				n, k := sizes[l+1], sizes[l]
				c := make([]float32, m*n)
				SgemmEpi(nil, false, true, m, n, k, in, k, w, k, c, n, false, eps(l))
				want, in = append(want, c), c
			}
			for i, pool := range pools {
				name := fmt.Sprintf("m=%d pool %d", m, i)
				hs := make([]Handoff, len(ws))
				in := x
				var from *Handoff
				for l, w := range ws {
					n, k := sizes[l+1], sizes[l]
					c := make([]float32, m*n)
					SgemmHandoff(pool, m, n, k, in, k, w, k, c, n, eps(l), from, &hs[l])
					sameBits(t, len(c), c, want[l])
					handed := useAsm && !avx512()
					if got := hs[l].c != nil; got != handed {
						t.Fatalf("%s: layer %d hands its C on: %v, want %v", name, l, got, handed)
					}
					if handed {
						panels := ceilDiv(m, nr)
						packed := make([]float32, panels*nr*n)
						for q := range panels {
							packBT(packed[q*nr*n:], c, n, 0, q*nr, n, min(nr, m-q*nr), make([]float32, nr*n))
						}
						sameBits(t, len(packed), hs[l].panels[:len(packed)], packed)
						// Scribbled over, C no longer holds what the
						// handoff does: the next product, which reads the
						// handoff, still gives its bits.
						for j := range c {
							c[j] = float32(math.NaN())
						}
					}
					in, from = c, &hs[l]
				}
			}
			// A product with a row bias stores no handoff.
			var h Handoff
			c := make([]float32, m*sizes[1])
			SgemmHandoff(nil, m, sizes[1], sizes[0], x, sizes[0], ws[0], sizes[0], c, sizes[1], Epilogue{RowBias: randSlice(r, m)}, nil, &h)
			if h.c != nil {
				t.Fatalf("m=%d: a product with a row bias hands its C on", m)
			}
		}
	})
}
