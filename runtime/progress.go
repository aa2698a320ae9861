package runtime

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress prints a trainer's progress to W: one line per epoch,
//
//	epoch 3/5  loss 0.3121  train acc 88.41%  test acc 87.90%  lr 0.05  12345 img/s  4.1s  eta 8.2s
//
// and, when W is a terminal, a status line within the epoch, with a
// progress bar, that Update redraws in place. When W is not a terminal (a file, a pipe, a CI log)
// nothing is printed within the epoch, so logs hold one line per epoch.
type Progress struct {
	W      io.Writer
	Epochs int

	// Terminal says whether W is a terminal. NewProgress sets it; set it
	// yourself to force or suppress the status line.
	Terminal bool

	now        func() time.Time
	start      time.Time // of the current epoch
	lastDraw   time.Time
	drawn      bool    // a status line is on screen
	epochTimes float64 // seconds spent in finished epochs
	finished   int     // epochs finished
}

// redrawEvery limits how often Update redraws the status line.
const redrawEvery = 100 * time.Millisecond

// NewProgress returns a Progress for a run of epochs epochs that writes to w.
func NewProgress(w io.Writer, epochs int) *Progress {
	return &Progress{W: w, Epochs: epochs, Terminal: IsTerminal(w), now: time.Now}
}

// IsTerminal reports whether w is an *os.File open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

func (p *Progress) clock() time.Time {
	if p.now == nil {
		p.now = time.Now
	}
	return p.now()
}

// StartEpoch marks the start of an epoch; the timings of the epoch's line
// run from here.
func (p *Progress) StartEpoch() {
	p.start = p.clock()
	p.lastDraw = time.Time{}
}

// Update redraws the status line, on a terminal and at most every 100ms:
// epoch (counted from 0) has seen done of total images, at a mean loss of
// loss so far.
func (p *Progress) Update(epoch, done, total int, loss float64) {
	if !p.Terminal {
		return
	}
	now := p.clock()
	if !p.lastDraw.IsZero() && now.Sub(p.lastDraw) < redrawEvery && done < total {
		return
	}
	p.lastDraw = now
	line := fmt.Sprintf("epoch %d/%d  %s %d/%d  loss %.4f", epoch+1, p.Epochs, bar(done, total), done, total, loss)
	if sec := now.Sub(p.start).Seconds(); sec > 0 {
		line += fmt.Sprintf("  %.0f img/s", float64(done)/sec)
	}
	fmt.Fprintf(p.W, "\r%s\x1b[K", line)
	p.drawn = true
}

// barWidth is the number of cells of the status line's progress bar.
const barWidth = 20

// bar draws done of total as a bar of barWidth cells: "[=======>    ]".
func bar(done, total int) string {
	k := barWidth
	if total > 0 && done < total {
		k = max(done, 0) * barWidth / total
	}
	b := []byte("[" + strings.Repeat(" ", barWidth) + "]")
	for i := range k {
		b[1+i] = '='
	}
	if k < barWidth {
		b[1+k] = '>'
	}
	return string(b)
}

// EpochStats is what an epoch's line reports. Accuracies are fractions in
// [0, 1]; a negative accuracy was not measured and is left out of the line.
type EpochStats struct {
	Epoch    int // counted from 0; printed from 1
	Loss     float64
	TrainAcc float64
	TestAcc  float64
	// ValAcc is the accuracy on a held-out validation split, printed
	// before the test accuracy when HasVal is set.
	ValAcc float64
	HasVal bool
	LR     float64
	Images int // images trained on in the epoch
	// TrainSeconds is the time spent training, without evaluation and
	// saving; the images/s figure uses it when set, else the epoch's time.
	TrainSeconds float64
}

// EndEpoch prints the epoch's line, replacing the status line on a terminal.
// The time is measured from StartEpoch; the estimate of the time left
// assumes the remaining epochs take as long as the mean of those so far.
func (p *Progress) EndEpoch(s EpochStats) {
	sec := p.clock().Sub(p.start).Seconds()
	p.epochTimes += sec
	p.finished++
	var b strings.Builder
	if p.drawn {
		b.WriteString("\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintf(&b, "epoch %d/%d  loss %.4f", s.Epoch+1, p.Epochs, s.Loss)
	if s.TrainAcc >= 0 {
		fmt.Fprintf(&b, "  train acc %.2f%%", 100*s.TrainAcc)
	}
	if s.HasVal && s.ValAcc >= 0 {
		fmt.Fprintf(&b, "  val acc %.2f%%", 100*s.ValAcc)
	}
	if s.TestAcc >= 0 {
		fmt.Fprintf(&b, "  test acc %.2f%%", 100*s.TestAcc)
	}
	fmt.Fprintf(&b, "  lr %g", s.LR)
	if t := cmp.Or(s.TrainSeconds, sec); t > 0 {
		fmt.Fprintf(&b, "  %.0f img/s", float64(s.Images)/t)
	}
	fmt.Fprintf(&b, "  %s", formatSeconds(sec))
	if left := p.Epochs - (s.Epoch + 1); left > 0 {
		fmt.Fprintf(&b, "  eta %s", formatSeconds(p.epochTimes/float64(p.finished)*float64(left)))
	}
	b.WriteByte('\n')
	io.WriteString(p.W, b.String())
}

// formatSeconds prints short times as "4.1s" and longer ones as "2m5s".
func formatSeconds(sec float64) string {
	if sec < 60 {
		return fmt.Sprintf("%.1fs", sec)
	}
	return time.Duration(sec * float64(time.Second)).Round(time.Second).String()
}
