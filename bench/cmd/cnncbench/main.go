// Command cnncbench measures cnnc's generated models as
// shared/anchors/torch_anchor.py measures PyTorch, and compares the two.
//
// Usage:
//
//	cnncbench [run] [flags]      compile, build and time the models; print a table
//	cnncbench prepare [flags]    only compile and build the timing program
//	cnncbench compare -cnnc a.json,b.json -torch c.json,d.json [-shim e.json,f.json]
//
// run times, for lenet5, lenet5bn, vggsmall and mlp10: training at batch
// 64 (the committed packages of gen/), inference at batch 256 and the
// latency of one sample, with packages compiled for those batch sizes. It
// compiles them with 'cnnc compile -batch N' into bench/_gen (ignored by
// ./... and by git), writes there a small program that links them with
// package bench/harness, builds it, and runs it once per thread count
// (CNNC_THREADS). See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cnncbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run", "prepare":
		return runCmd(ctx, cmd, args, stdout, stderr)
	case "compare":
		return compareCmd(args, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q; the commands are run, prepare and compare", cmd)
}

// A runDoc is what run writes with -out: one torch_anchor.py-like result
// per thread count.
type runDoc struct {
	Runs []json.RawMessage `json:"runs"`
}

func runCmd(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cnncbench "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	models := fs.String("models", "all", "comma-separated `models` to time: lenet5, lenet5bn, vggsmall, mlp10, or all")
	threads := fs.String("threads", "2,1", "comma-separated thread `counts` (CNNC_THREADS), one run each")
	reps := fs.Int("reps", 5, "repetitions per figure (the figure is their median)")
	minTime := fs.Float64("min-time", 1.0, "least `seconds` per repetition, after warm-up")
	trainBS := fs.Int("train-bs", 64, "training batch size")
	inferBS := fs.Int("infer-bs", 256, "inference batch size")
	skip := fs.String("skip", "", "comma list of what not to time: train, infer, latency")
	fresh := fs.Bool("fresh", false, "compile the training batch too, instead of using the committed gen/ package")
	noPrepare := fs.Bool("no-prepare", false, "use the timing program built by an earlier run or prepare")
	root := fs.String("root", "", "cnnc's module root (default: found from the current directory)")
	out := fs.String("out", "", "also write the results as JSON to `file`")
	verbose := fs.Bool("v", false, "print the commands that prepare runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	ms, err := chooseModels(*models)
	if err != nil {
		return err
	}
	var tcounts []int
	for _, s := range strings.Split(*threads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-threads %q: want a comma list of positive counts", *threads)
		}
		tcounts = append(tcounts, n)
	}
	if *trainBS < 1 || *inferBS < 1 {
		return fmt.Errorf("-train-bs %d -infer-bs %d: want positive batch sizes", *trainBS, *inferBS)
	}
	if *root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if *root, err = moduleRoot(wd); err != nil {
			return err
		}
	}
	p := &preparer{root: *root, fresh: *fresh}
	if *verbose {
		p.log = stderr
	}
	bin := filepath.Join(*root, filepath.FromSlash(genDir), "bin", "run")
	if !*noPrepare {
		if bin, err = p.prepare(ctx, ms, batches{*trainBS, *inferBS, 1}); err != nil {
			return err
		}
	} else if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("-no-prepare: %w; run 'cnncbench prepare' first", err)
	}
	if cmd == "prepare" {
		fmt.Fprintf(stdout, "%s\n", bin)
		return nil
	}

	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	tmp, err := os.MkdirTemp("", "cnncbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var all runDoc
	var docs []*benchDoc
	for _, t := range tcounts {
		file := filepath.Join(tmp, fmt.Sprintf("t%d.json", t))
		c := exec.CommandContext(ctx, bin, "-threads", strconv.Itoa(t), "-reps", strconv.Itoa(*reps),
			"-min-time", strconv.FormatFloat(*minTime, 'g', -1, 64), "-models", strings.Join(names, ","),
			"-skip", *skip, "-out", file)
		c.Env = append(os.Environ(), "CNNC_THREADS="+strconv.Itoa(t))
		c.Stdout, c.Stderr = stderr, stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("timing program, %d threads: %w", t, err)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		doc, err := parseDoc(data, file)
		if err != nil {
			return err
		}
		all.Runs = append(all.Runs, data)
		docs = append(docs, doc)
	}
	for _, d := range docs {
		printRun(stdout, d, names)
	}
	if *out != "" {
		data, err := json.MarshalIndent(all, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func compareCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cnncbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cnncFiles := fs.String("cnnc", "", "comma-separated `files` written by 'cnncbench run -out', one per round (a+b for a round's models run apart)")
	torchFiles := fs.String("torch", "", "comma-separated `files` written by torch_anchor.py as installed, one per round (a+b as for -cnnc)")
	shimFiles := fs.String("shim", "", "comma-separated `files` written by torch_anchor.py with the dnnl shim, one per round (a+b as for -cnnc; optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cnncFiles == "" || *torchFiles == "" {
		return fmt.Errorf("compare needs -cnnc and -torch")
	}
	cnnc, err := readRounds(*cnncFiles, true)
	if err != nil {
		return err
	}
	torch, err := readRounds(*torchFiles, false)
	if err != nil {
		return err
	}
	var shim []*benchDoc
	if *shimFiles != "" {
		if shim, err = readRounds(*shimFiles, false); err != nil {
			return err
		}
	}
	printCompare(stdout, cnnc, torch, shim)
	return nil
}

// readRounds reads one result per round from a comma-separated list of
// rounds. A round is a file, or files joined by "+" that hold different
// models of the round (compare.sh runs each model on its own, so that its
// cnnc and PyTorch figures are measured next to each other): their models
// are merged. For cnncbench's files, the result is the only run in it.
func readRounds(list string, cnnc bool) ([]*benchDoc, error) {
	var docs []*benchDoc
	for _, round := range strings.Split(list, ",") {
		var doc *benchDoc
		for _, file := range strings.Split(round, "+") {
			d, err := readDoc(file, cnnc)
			if err != nil {
				return nil, err
			}
			if doc == nil {
				doc = d
			} else if err := doc.merge(d); err != nil {
				return nil, err
			}
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

// merge adds o's models, from another file of the same round, to d's.
func (d *benchDoc) merge(o *benchDoc) error {
	if d.Models == nil {
		d.Models = map[string]map[string]json.RawMessage{}
	}
	for name, m := range o.Models {
		if _, dup := d.Models[name]; dup {
			return fmt.Errorf("%s: model %s is also in %s, another file of the same round", o.file, name, d.file)
		}
		d.Models[name] = m
	}
	return nil
}

// readDoc reads one result file.
func readDoc(file string, cnnc bool) (*benchDoc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if cnnc {
		var rd runDoc
		if err := json.Unmarshal(data, &rd); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(rd.Runs) != 1 {
			return nil, fmt.Errorf("%s holds %d runs, want one (run cnncbench with one -threads count per round)", file, len(rd.Runs))
		}
		data = rd.Runs[0]
	}
	return parseDoc(data, file)
}
