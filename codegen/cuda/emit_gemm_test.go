package cuda

import (
	"fmt"
	"testing"
)

// TestTileFor checks, over products from a few rows to very many and from
// 1 to 600 columns, that every tile tileFor chooses meets what
// cnnc_gemm_tile assumes (and tileForTF32's what cnnc_gemm_tile_tf32
// does): 32 to 256 threads, a step's elements of A and B
// dividing evenly among them, row pitches that keep 4-float reads aligned,
// runs of 4 where a thread's outputs are read 4 at a time, and room in
// shared memory for the two buffers beside a convolution's tap table.
func TestTileFor(t *testing.T) {
	for _, maxM := range []int{1, 6, 32, 33, 64, 256, 4704, 16383, 16384, 262144} {
		for _, nc := range []int{1, 3, 8, 15, 16, 25, 31, 32, 63, 64, 150, 288, 576} {
			t.Run(fmt.Sprintf("%dx%d", maxM, nc), func(t *testing.T) {
				bm, bn, tm, tn := tileFor(maxM, nc)
				q := &gemm{bm: bm, bn: bn, tm: tm, tn: tn}
				T := q.threads()
				// On the tensor cores: whole warps of 32 rows by
				// min(bn, 32) columns, rows padded by 8 floats.
				tbm, tbn, ttm, ttn := tileForTF32(maxM, nc)
				tq := &gemm{bm: tbm, bn: tbn, tm: ttm, tn: ttn, tf32: true}
				if want := tbm / 32 * (tbn / min(tbn, 32)) * 32; tbm%32 != 0 || tbn%8 != 0 || tq.threads() != want || want > 256 {
					t.Errorf("tensor-core tile %dx%d: %d threads, want %d warps of 32x%d (at most 256 threads)", tbm, tbn, tq.threads(), want/32, min(tbn, 32))
				}
				if tbm*bk%tq.threads() != 0 || tbn*bk%tq.threads() != 0 {
					t.Errorf("tensor-core tile %dx%d: a step does not divide among %d threads", tbm, tbn, tq.threads())
				}
				if shared := 4 * (2*bk*(tbm+8) + 2*bk*(tbn+8) + 2*maxTaps); shared > 48<<10 {
					t.Errorf("tensor-core tile %dx%d: %d bytes of shared memory", tbm, tbn, shared)
				}
				if T < 32 || T > 256 || T%32 != 0 {
					t.Errorf("tile %dx%d of %dx%d outputs a thread: %d threads, want a multiple of 32 from 32 to 256", bm, bn, tm, tn, T)
				}
				if bm%tm != 0 || bn%tn != 0 {
					t.Errorf("tile %dx%d does not divide into %dx%d outputs a thread", bm, bn, tm, tn)
				}
				if bm*bk%T != 0 || bn*bk%T != 0 {
					t.Errorf("tile %dx%d: a step's %d and %d elements do not divide among %d threads", bm, bn, bm*bk, bn*bk, T)
				}
				if bm%4 != 0 || bn%4 != 0 {
					t.Errorf("tile %dx%d: rows of shared memory not a multiple of 4 floats", bm, bn)
				}
				shared := 4 * (2*bk*(bm+4) + 2*bk*(bn+4) + 2*maxTaps)
				if shared > 48<<10 {
					t.Errorf("tile %dx%d: %d bytes of shared memory, more than a block may have statically", bm, bn, shared)
				}
			})
		}
	}
}
