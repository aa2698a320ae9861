package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func writeJPEG(t *testing.T, path string, img image.Image) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// imageFolder writes a small image folder and returns its path and the
// NRGBA image it holds as cat/a.png.
func imageFolder(t *testing.T) (string, *image.NRGBA) {
	dir := t.TempDir()
	nrgba := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for y := range 4 {
		for x := range 4 {
			nrgba.SetNRGBA(x, y, color.NRGBA{R: uint8(16 * x), G: uint8(16 * y), B: uint8(200 - 10*x), A: uint8(60 * y)})
		}
	}
	writePNG(t, filepath.Join(dir, "cat", "a.png"), nrgba)
	gray := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 15)
	}
	writePNG(t, filepath.Join(dir, "cat", "b.PNG"), gray)
	uniform := image.NewRGBA(image.Rect(0, 0, 9, 7))
	for i := 0; i < len(uniform.Pix); i += 4 {
		copy(uniform.Pix[i:], []uint8{200, 100, 50, 255})
	}
	writeJPEG(t, filepath.Join(dir, "cat", "sub", "c.jpg"), uniform)
	writePNG(t, filepath.Join(dir, "dog", "x.png"), uniform)
	// Skipped: hidden files and folders, other extensions, top-level files.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cat", ".hidden.png"), []byte("junk"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cat", "notes.txt"), []byte("junk"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".cache"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("junk"), 0o644))
	return dir, nrgba
}

func TestLoadImageFolderRGB(t *testing.T) {
	dir, nrgba := imageFolder(t)
	d, err := LoadImageFolder(dir, 3, 4, 4)
	require.NoError(t, err)
	assert.Equal(t, 4, d.N)
	assert.Equal(t, []int32{0, 0, 0, 1}, d.Labels)
	assert.Equal(t, []string{"cat", "dog"}, d.ClassNames)
	assert.Equal(t, 2, d.Classes)
	assert.Equal(t, filepath.Base(dir), d.Name)
	// cat/a.png: straight colour, alpha dropped, exact.
	a := d.Image(0)
	for y := range 4 {
		for x := range 4 {
			p := nrgba.NRGBAAt(x, y)
			assert.Equal(t, []float32{float32(p.R) / 255, float32(p.G) / 255, float32(p.B) / 255},
				[]float32{a[y*4+x], a[16+y*4+x], a[32+y*4+x]}, "pixel (%d,%d)", x, y)
		}
	}
	// cat/b.PNG: grey repeated in each channel.
	b := d.Image(1)
	for i := range 16 {
		v := float32(i*15) / 255
		assert.Equal(t, []float32{v, v, v}, []float32{b[i], b[16+i], b[32+i]})
	}
	// cat/sub/c.jpg and dog/x.png: a uniform 9x7 image resized to 4x4
	// stays uniform (the JPEG within its loss).
	for i, tol := range map[int]float64{2: 3.0 / 255, 3: 1e-6} {
		img := d.Image(i)
		for j, v := range img {
			want := []float64{200, 100, 50}[j/16] / 255
			require.InDelta(t, want, v, tol, "image %d value %d", i, j)
		}
	}
}

func TestLoadImageFolderGrey(t *testing.T) {
	dir, nrgba := imageFolder(t)
	d, err := LoadImageFolder(dir, 1, 2, 2)
	require.NoError(t, err)
	assert.Equal(t, 4, d.N)
	assert.Len(t, d.Images, 4*4)
	d4, err := LoadImageFolder(dir, 1, 4, 4)
	require.NoError(t, err)
	p := nrgba.NRGBAAt(1, 2)
	want := (0.299*float64(p.R) + 0.587*float64(p.G) + 0.114*float64(p.B)) / 255
	assert.InDelta(t, want, d4.Image(0)[2*4+1], 1e-6)
	// The uniform image's grey, after a 9x7 to 2x2 resize.
	for _, v := range d.Image(3) {
		assert.InDelta(t, (0.299*200+0.587*100+0.114*50)/255, v, 1e-5)
	}
}

func TestLoadImageFolderErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		c, h, w int
		err     string
	}{
		{"corrupt", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "dog", "bad.png"), []byte("not a png"), 0o644))
		}, 3, 4, 4, filepath.Join("dog", "bad.png") + ": decode: image: unknown format"},
		{"truncated", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, "dog", "x.png"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "dog", "y.png"), b[:len(b)/2], 0o644))
		}, 3, 4, 4, filepath.Join("dog", "y.png") + ": decode: "},
		{"empty class", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "emu", "nested"), 0o755))
		}, 3, 4, 4, "class folder emu has no .png, .jpg or .jpeg files"},
		{"channels", func(t *testing.T, dir string) {}, 2, 4, 4, "2 channels asked for; images have 1 (grey) or 3 (RGB)"},
		{"size", func(t *testing.T, dir string) {}, 3, 0, 4, "image size 0x4 must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := imageFolder(t)
			tt.setup(t, dir)
			_, err := LoadImageFolder(dir, tt.c, tt.h, tt.w)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	_, err := LoadImageFolder(t.TempDir(), 3, 4, 4)
	assert.ErrorContains(t, err, "no class folders; put the images of each class in a folder of their own")
	_, err = LoadImageFolder(filepath.Join(t.TempDir(), "nope"), 3, 4, 4)
	assert.ErrorContains(t, err, "load image folder: open")
}

// TestResize checks the filter against values worked out by hand from
// PIL's precompute_coeffs for the bilinear filter.
func TestResize(t *testing.T) {
	tests := []struct {
		name   string
		src    []float32
		sh, sw int
		h, w   int
		want   []float32
	}{
		// Enlarging 2 -> 4: bilinear, align_corners=False, clamped edges.
		{"up", []float32{0, 1}, 1, 2, 1, 4, []float32{0, 0.25, 0.75, 1}},
		// Shrinking 4 -> 2: triangle of half-width 2 centred at 1 and 3,
		// weights (.75, .75, .25)/1.75 and (.25, .75, .75)/1.75.
		{"down", []float32{0, 1, 2, 3}, 1, 4, 1, 2, []float32{1.25 / 1.75, 4 / 1.75}},
		{"same", []float32{5, 6, 7, 8}, 2, 2, 2, 2, []float32{5, 6, 7, 8}},
		// Both axes: a column resize of a constant row.
		{"2d", []float32{1, 1, 3, 3}, 2, 2, 4, 1, []float32{1, 1.5, 2.5, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]float32, tt.h*tt.w)
			resize(dst, tt.h, tt.w, tt.src, 1, tt.sh, tt.sw)
			assert.InDeltaSlice(t, tt.want, dst, 1e-6)
		})
	}
}
