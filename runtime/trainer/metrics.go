package trainer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// epochMetrics is one epoch's line of the metrics files.
type epochMetrics struct {
	Epoch        int      `json:"epoch"` // counted from 1
	Loss         float64  `json:"loss"`
	TrainAcc     float64  `json:"train_acc"`
	ValAcc       *float64 `json:"val_acc,omitempty"` // with -val only
	TestAcc      float64  `json:"test_acc"`
	LR           float64  `json:"lr"`
	ImagesPerSec float64  `json:"images_per_sec"`
	Seconds      float64  `json:"seconds"`
	TrainSeconds float64  `json:"train_seconds"`
}

// csvHeader is the first row of the CSV metrics file.
const csvHeader = "epoch,loss,train_acc,val_acc,test_acc,lr,images_per_sec,seconds,train_seconds"

// csvRow returns m as a row of the CSV file, without the newline; val_acc
// is empty without -val.
func (m epochMetrics) csvRow() string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	val := ""
	if m.ValAcc != nil {
		val = f(*m.ValAcc)
	}
	return strings.Join([]string{strconv.Itoa(m.Epoch), f(m.Loss), f(m.TrainAcc), val, f(m.TestAcc), f(m.LR), f(m.ImagesPerSec), f(m.Seconds), f(m.TrainSeconds)}, ",")
}

// metricsLog is one metrics file, JSON lines or CSV.
type metricsLog struct {
	path string
	csv  bool
	f    *os.File
}

// openMetrics opens the metrics file at path. A fresh run truncates it;
// a resumed run that has finished epochs keeps the rows of epochs 1 to
// epochs and drops later ones, which a run killed after writing them but
// before its checkpoint left behind, so the file reads as one run.
func openMetrics(path string, csv bool, epochs int) (*metricsLog, error) {
	var keep []byte
	if epochs > 0 {
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("metrics file: %w", err)
		}
		keep = keepEpochs(old, csv, epochs)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("metrics file: %w", err)
	}
	l := &metricsLog{path: path, csv: csv, f: f}
	if csv && len(keep) == 0 {
		keep = []byte(csvHeader + "\n")
	}
	if _, err := f.Write(keep); err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics file: %w", err)
	}
	return l, nil
}

// keepEpochs returns the lines of a metrics file whose epoch is at most
// epochs, and the CSV header.
func keepEpochs(b []byte, csv bool, epochs int) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var e int
		if csv {
			if line == csvHeader {
				out.WriteString(line + "\n")
				continue
			}
			first, _, _ := strings.Cut(line, ",")
			n, err := strconv.Atoi(first)
			if err != nil {
				continue
			}
			e = n
		} else {
			var m struct {
				Epoch int `json:"epoch"`
			}
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			e = m.Epoch
		}
		if e >= 1 && e <= epochs {
			out.WriteString(line + "\n")
		}
	}
	if csv && out.Len() > 0 && !bytes.HasPrefix(out.Bytes(), []byte(csvHeader)) {
		return append([]byte(csvHeader+"\n"), out.Bytes()...)
	}
	return out.Bytes()
}

// write appends m's line and flushes it to the system, so a killed run
// leaves every finished epoch in the file.
func (l *metricsLog) write(m epochMetrics) error {
	var line []byte
	if l.csv {
		line = []byte(m.csvRow() + "\n")
	} else {
		j, _ := json.Marshal(m) // plain numbers always marshal
		line = append(j, '\n')
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

func (l *metricsLog) close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}
