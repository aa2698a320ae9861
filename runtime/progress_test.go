package runtime

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakeClock returns a clock that advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 5)
	assert.False(t, p.Terminal, "a bytes.Buffer is not a terminal")
	p.now = fakeClock(2 * time.Second) // every epoch takes 2s
	for epoch := range 2 {
		p.StartEpoch()
		p.Update(epoch, 100, 60000, 1.5) // no terminal: prints nothing
		p.EndEpoch(EpochStats{Epoch: epoch, Loss: 0.31214, TrainAcc: 0.8841, TestAcc: 0.879, LR: 0.05, Images: 60000})
	}
	p.StartEpoch()
	p.EndEpoch(EpochStats{Epoch: 4, Loss: 0.2, TrainAcc: -1, TestAcc: -1, LR: 0.005, Images: 1000})
	want := "epoch 1/5  loss 0.3121  train acc 88.41%  test acc 87.90%  lr 0.05  30000 img/s  2.0s  eta 8.0s\n" +
		"epoch 2/5  loss 0.3121  train acc 88.41%  test acc 87.90%  lr 0.05  30000 img/s  2.0s  eta 6.0s\n" +
		"epoch 5/5  loss 0.2000  lr 0.005  500 img/s  2.0s\n"
	assert.Equal(t, want, b.String())
}

func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 2)
	p.Terminal = true
	p.now = fakeClock(50 * time.Millisecond)
	p.StartEpoch()              // t = 50ms
	p.Update(0, 64, 256, 2.0)   // t = 100ms: first draw
	p.Update(0, 128, 256, 1.5)  // t = 150ms: too soon, skipped
	p.Update(0, 192, 256, 1.25) // t = 200ms: 100ms since the last draw
	p.EndEpoch(EpochStats{Epoch: 0, Loss: 1, TrainAcc: 0.5, TestAcc: -1, LR: 0.1, Images: 256})
	want := "\repoch 1/2  [=====>              ] 64/256  loss 2.0000  1280 img/s\x1b[K" +
		"\repoch 1/2  [===============>    ] 192/256  loss 1.2500  1280 img/s\x1b[K" +
		"\r\x1b[Kepoch 1/2  loss 1.0000  train acc 50.00%  lr 0.1  1280 img/s  0.2s  eta 0.2s\n"
	assert.Equal(t, want, b.String())
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	assert.NoError(t, err)
	defer f.Close()
	assert.False(t, IsTerminal(f), "a regular file is not a terminal")
	assert.False(t, IsTerminal(&bytes.Buffer{}))
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		sec  float64
		want string
	}{
		{0, "0.0s"},
		{4.14, "4.1s"},
		{59.9, "59.9s"},
		{125.7, "2m6s"},
		{3725, "1h2m5s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatSeconds(tt.sec), "%v seconds", tt.sec)
	}
}
