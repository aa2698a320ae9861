package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// Magic numbers of IDX files of unsigned bytes: 0x08 is the element type,
// the low byte the number of dimensions.
const (
	idxImageMagic = 0x00000803
	idxLabelMagic = 0x00000801
)

// maxIDXBytes bounds what a header may claim, so a corrupt header cannot
// make a reader allocate without limit.
const maxIDXBytes = 1 << 34

// ReadIDXImages reads an IDX file of n images of h x w bytes, plain or
// gzipped (told apart by the gzip magic bytes, not by the name), and
// returns the pixels, image after image, row after row.
func ReadIDXImages(path string) (data []uint8, n, h, w int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("read images: %w", err)
	}
	defer f.Close()
	data, n, h, w, err = decodeIDXImages(f)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return data, n, h, w, nil
}

// ReadIDXLabels reads an IDX file of labels, one byte each, plain or
// gzipped.
func ReadIDXLabels(path string) ([]uint8, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	defer f.Close()
	labels, err := decodeIDXLabels(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return labels, nil
}

// maybeGunzip returns a reader of r's contents, decompressed if they start
// with the gzip magic bytes 1f 8b.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("bad gzip header: %w", err)
		}
		return zr, nil
	}
	return br, nil
}

// readHeader reads the magic number and dims dimensions of an IDX file. It
// checks the magic number before it asks for the dimensions, so a file of
// another kind is reported as such even when it is short.
func readHeader(r io.Reader, magic uint32, dims int, kind string) ([]int, error) {
	hdr := make([]byte, 4+4*dims)
	got, err := io.ReadFull(r, hdr[:4])
	if err == nil {
		if m := binary.BigEndian.Uint32(hdr); m != magic {
			return nil, fmt.Errorf("wrong magic 0x%08x, want 0x%08x (is this an IDX %s file?)", m, magic, kind)
		}
		var more int
		more, err = io.ReadFull(r, hdr[4:])
		got += more
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated: only %d bytes, shorter than the %d-byte IDX %s header", got, len(hdr), kind)
		}
		return nil, err
	}
	d := make([]int, dims)
	for i := range d {
		d[i] = int(binary.BigEndian.Uint32(hdr[4+4*i:]))
	}
	return d, nil
}

// readBody reads want bytes of IDX data. It reports a short read with the
// number of bytes that did follow, in the words of describe.
func readBody(r io.Reader, want uint64, describe string) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(want, 64<<20)))
	_, err := buf.ReadFrom(io.LimitReader(r, int64(want)))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("corrupt after %d bytes of data: %w (fetch the file again)", buf.Len(), err)
	}
	if uint64(buf.Len()) < want {
		return nil, fmt.Errorf("truncated: header says %s (%d bytes) but only %d bytes follow", describe, want, buf.Len())
	}
	return buf.Bytes(), nil
}

func decodeIDXImages(r io.Reader) (data []uint8, n, h, w int, err error) {
	r, err = maybeGunzip(r)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	d, err := readHeader(r, idxImageMagic, 3, "image")
	if err != nil {
		return nil, 0, 0, 0, err
	}
	n, h, w = d[0], d[1], d[2]
	describe := fmt.Sprintf("%d images of %dx%d", n, h, w)
	hi, size := bits.Mul64(uint64(n), uint64(h)*uint64(w))
	if hi != 0 || size > maxIDXBytes {
		return nil, 0, 0, 0, fmt.Errorf("header says %s, more than cnnc loads (is this an IDX image file?)", describe)
	}
	data, err = readBody(r, size, describe)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	return data, n, h, w, nil
}

func decodeIDXLabels(r io.Reader) ([]uint8, error) {
	r, err := maybeGunzip(r)
	if err != nil {
		return nil, err
	}
	d, err := readHeader(r, idxLabelMagic, 1, "label")
	if err != nil {
		return nil, err
	}
	return readBody(r, uint64(d[0]), fmt.Sprintf("%d labels", d[0]))
}
