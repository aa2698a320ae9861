package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// A benchDoc is one run's results, cnncbench's or torch_anchor.py's: the
// two share their field names.
type benchDoc struct {
	file     string
	Tool     string         `json:"tool"`
	Blas     string         `json:"blas"`
	Threads  int            `json:"threads"`
	Reps     int            `json:"reps"`
	MinTimeS float64        `json:"min_time_s"`
	QuietMax float64        `json:"quiet_max"`
	Env      map[string]any `json:"env"`
	Models   map[string]map[string]json.RawMessage
}

// A figure is one timed quantity: the median of its repetitions.
type figure struct {
	Median           float64   `json:"median"`
	Min              float64   `json:"min"`
	Max              float64   `json:"max"`
	Values           []float64 `json:"values"`
	ForeignLoad      []float64 `json:"foreign_load"`
	ContaminatedReps int       `json:"contaminated_reps"`
	P10UsMedian      float64   `json:"p10_us_median"`
	P90UsMedian      float64   `json:"p90_us_median"`
}

func parseDoc(data []byte, file string) (*benchDoc, error) {
	d := &benchDoc{file: file}
	if err := json.Unmarshal(data, d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

// figure returns the model's figure at key, inside variant if that is
// not "" (infer_bs256 and latency_bs1 hold one figure per variant), or
// nil.
func (d *benchDoc) figure(model, key, variant string) *figure {
	raw, ok := d.Models[model][key]
	if !ok {
		return nil
	}
	if variant != "" {
		var vs map[string]json.RawMessage
		if json.Unmarshal(raw, &vs) != nil {
			return nil
		}
		if raw, ok = vs[variant]; !ok {
			return nil
		}
	}
	var f figure
	if json.Unmarshal(raw, &f) != nil || f.Values == nil {
		return nil
	}
	return &f
}

// key returns the model's key that starts with prefix ("train_bs"), or "".
func (d *benchDoc) key(model, prefix string) string {
	var keys []string
	for k := range d.Models[model] {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func (d *benchDoc) anchor(model string) string {
	var a string
	if json.Unmarshal(d.Models[model]["anchor"], &a) != nil || a == "" {
		return model
	}
	return a
}

// num formats a figure: thousands separated, a decimal below 100.
func num(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// table prints rows as a Markdown table with aligned columns.
func table(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(&b, " %-*s |", width[i], c)
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, r := range rows[1:] {
		line(r)
	}
}

// cell formats a figure as median (min-max), with "!" if a repetition
// was noisier than the gate allows.
func cell(f *figure) string {
	if f == nil {
		return "-"
	}
	s := fmt.Sprintf("%s (%s-%s)", num(f.Median), num(f.Min), num(f.Max))
	if f.ContaminatedReps > 0 {
		s += " !"
	}
	return s
}

// printRun prints one run of cnncbench as a table.
func printRun(w io.Writer, d *benchDoc, models []string) {
	fmt.Fprintf(w, "\ncnnc, threads=%d (%v, GOMAXPROCS %v): median (min-max) of %d reps, each >= %g s after warm-up\n\n",
		d.Threads, d.Env["go"], d.Env["gomaxprocs"], d.Reps, d.MinTimeS)
	rows := [][]string{{"model", "train img/s", "infer img/s", "latency bs1 us", "latency p10-p90 us"}}
	for _, m := range models {
		tk, ik := d.key(m, "train_bs"), d.key(m, "infer_bs")
		if tk != "" {
			rows[0][1] = strings.Replace(tk, "train_bs", "train bs", 1) + " img/s"
		}
		if ik != "" {
			rows[0][2] = strings.Replace(ik, "infer_bs", "infer bs", 1) + " img/s"
		}
		lat := d.figure(m, "latency_bs1", "cnnc")
		spread := "-"
		if lat != nil {
			spread = num(lat.P10UsMedian) + "-" + num(lat.P90UsMedian)
		}
		rows = append(rows, []string{m, cell(d.figure(m, tk, "")), cell(d.figure(m, ik, "cnnc")), cell(lat), spread})
	}
	table(w, rows)
	fmt.Fprintf(w, "(! = a repetition's foreign CPU load was above %g after retries)\n", d.QuietMax)
}

// A metric is one row of the comparison.
type metric struct {
	label    string
	key      string // key in the model's entry; the same in both
	cnncVar  string // variant of cnnc's figure, "" for training
	torchVar string // variant of PyTorch's figure
	latency  bool   // lower is better
}

// pooled returns the median of every repetition of the figures, the
// figures' medians, and whether any repetition was noisy.
func pooled(fs []*figure) (med float64, meds []float64, noisy bool) {
	var all []float64
	for _, f := range fs {
		if f == nil {
			return math.NaN(), nil, false
		}
		all = append(all, f.Values...)
		meds = append(meds, f.Median)
		noisy = noisy || f.ContaminatedReps > 0
	}
	return median(all), meds, noisy
}

func figures(docs []*benchDoc, model, key, variant string) []*figure {
	var fs []*figure
	for _, d := range docs {
		fs = append(fs, d.figure(model, key, variant))
	}
	return fs
}

// printCompare prints cnnc against PyTorch as installed and with the dnnl
// shim, round by round.
func printCompare(w io.Writer, cnnc, torch, shim []*benchDoc) {
	c0 := cnnc[0]
	var models []string
	for m := range c0.Models {
		models = append(models, m)
	}
	order := map[string]int{}
	for i, m := range zoo {
		order[m.name] = i
	}
	sort.Slice(models, func(i, j int) bool { return order[models[i]] < order[models[j]] })

	reps := 0
	for _, d := range cnnc {
		reps += d.Reps
	}
	fmt.Fprintf(w, "\ncnnc vs PyTorch (torch_anchor.py), threads=%d, %d rounds run interleaved (cnnc, PyTorch as installed", c0.Threads, len(cnnc))
	if len(shim) > 0 {
		fmt.Fprint(w, ", PyTorch with the dnnl shim")
	}
	fmt.Fprintf(w, "),\n%d reps per round, each >= %g s; each figure is the median of all %d reps of all rounds.\n", c0.Reps, c0.MinTimeS, reps)
	fmt.Fprintf(w, "cnnc: %v; PyTorch %v (%s)\n", c0.Env["go"], torch[0].Env["torch"], torch[0].Blas)
	fmt.Fprint(w, "cnnc/PyTorch = cnnc's speed over PyTorch's (for latency: PyTorch us over cnnc us), so > 1 means cnnc\n"+
		"is faster: the median of the per-round ratios, then each round's. ! = a repetition stayed noisy after retries.\n\n")

	header := []string{"model", "metric", "cnnc", "PyTorch (as installed)"}
	if len(shim) > 0 {
		header = append(header, "PyTorch (dnnl shim)")
	}
	header = append(header, "cnnc/PyTorch (as installed)")
	if len(shim) > 0 {
		header = append(header, "cnnc/PyTorch (dnnl shim)")
	}
	rows := [][]string{header}
	for _, m := range models {
		a := c0.anchor(m)
		var ms []metric
		if k := c0.key(m, "train_bs"); k != "" {
			ms = append(ms, metric{label: strings.Replace(k, "train_bs", "train bs", 1) + " img/s", key: k})
		}
		if k := c0.key(m, "infer_bs"); k != "" {
			l := strings.Replace(k, "infer_bs", "infer bs", 1) + " img/s"
			ms = append(ms, metric{label: l + " vs eager", key: k, cnncVar: "cnnc", torchVar: "eager"},
				metric{label: l + " vs ofi", key: k, cnncVar: "cnnc", torchVar: "ofi"})
		}
		if c0.figure(m, "latency_bs1", "cnnc") != nil {
			ms = append(ms, metric{label: "latency bs1 us vs eager", key: "latency_bs1", cnncVar: "cnnc", torchVar: "eager", latency: true},
				metric{label: "latency bs1 us vs ofi", key: "latency_bs1", cnncVar: "cnnc", torchVar: "ofi", latency: true})
		}
		for _, mt := range ms {
			cm, cmeds, cnoisy := pooled(figures(cnnc, m, mt.key, mt.cnncVar))
			row := []string{m, mt.label, mark(num(cm), cnoisy)}
			var ratios []string
			for _, docs := range [][]*benchDoc{torch, shim} {
				if len(docs) == 0 {
					continue
				}
				tm, tmeds, tnoisy := pooled(figures(docs, a, mt.key, mt.torchVar))
				row = append(row, mark(num(tm), tnoisy))
				ratios = append(ratios, ratio(cmeds, tmeds, mt.latency))
			}
			rows = append(rows, append(row, ratios...))
		}
	}
	table(w, rows)
}

func mark(s string, noisy bool) string {
	if noisy {
		return s + " !"
	}
	return s
}

// ratio formats the paired ratios of cnnc's and PyTorch's per-round
// medians: their median, then each.
func ratio(cnnc, torch []float64, latency bool) string {
	n := min(len(cnnc), len(torch))
	if n == 0 {
		return "-"
	}
	var rs []float64
	var parts []string
	for i := range n {
		r := cnnc[i] / torch[i]
		if latency {
			r = torch[i] / cnnc[i]
		}
		rs = append(rs, r)
		parts = append(parts, strconv.FormatFloat(r, 'f', 2, 64))
	}
	if n == 1 {
		return parts[0]
	}
	return fmt.Sprintf("%.2f (%s)", median(rs), strings.Join(parts, ", "))
}
