package trainer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Defaults of the flags: the recipe of the PyTorch accuracy anchor for
// LeNet-5 on Fashion-MNIST (shared/anchors/accuracy_anchor.py).
const (
	defaultEpochs   = 5
	defaultBatch    = 64
	defaultLR       = 0.05
	defaultMomentum = 0.9
	defaultLRSteps  = "4"
	defaultLRGamma  = 0.1
)

// config is the parsed command line.
type config struct {
	data      string
	epochs    int
	batch     int
	batchSet  bool // -batch was given
	lr        float64
	momentum  float64
	nesterov  bool
	wd        float64
	lrSteps   []int // epochs counted from 1
	lrGamma   float64
	seed      uint64
	threads   int
	mean      bool
	save      string
	saveSet   bool // -save was given, possibly as ""
	load      string
	evalOnly  bool
	metrics   string
	limit     int
	quiet     bool
	lrStepsIn string
}

// parseFlags parses args into a config and checks the values. It returns
// flag.ErrHelp, after printing the usage to stdout, for -h.
func parseFlags(args []string, stdout io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.StringVar(&c.data, "data", "", "data set `directory` holding the four IDX files of MNIST's format, plain or gzipped (default: /usr/share/datasets/fashion-mnist if present, else the embedded subset)")
	fs.IntVar(&c.epochs, "epochs", defaultEpochs, "number of epochs to train")
	fs.IntVar(&c.batch, "batch", defaultBatch, "mini-batch size, at most the model's compiled batch size")
	fs.Float64Var(&c.lr, "lr", defaultLR, "learning rate of the first epoch")
	fs.Float64Var(&c.momentum, "momentum", defaultMomentum, "SGD momentum, in [0, 1)")
	fs.BoolVar(&c.nesterov, "nesterov", false, "use Nesterov momentum")
	fs.Float64Var(&c.wd, "wd", 0, "L2 weight decay, applied by the optimiser")
	fs.StringVar(&c.lrStepsIn, "lr-steps", defaultLRSteps, "comma-separated `epochs`, counted from 1, from which the learning rate is multiplied by -lr-gamma (\"\" for none)")
	fs.Float64Var(&c.lrGamma, "lr-gamma", defaultLRGamma, "factor of each learning-rate step")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of initialisation, shuffling and dropout")
	fs.IntVar(&c.threads, "threads", 0, "worker threads of the kernels (0: CNNC_THREADS if set, else all cores)")
	fs.BoolVar(&c.mean, "mean", true, "subtract the training set's mean image from every input")
	fs.StringVar(&c.save, "save", "", "checkpoint `path` written after every epoch (default <model>.safetensors in the current directory; -save \"\" saves nothing)")
	fs.StringVar(&c.load, "load", "", "checkpoint `path` to start from")
	fs.BoolVar(&c.evalOnly, "eval-only", false, "evaluate the -load checkpoint on the test set and exit")
	fs.StringVar(&c.metrics, "metrics", "", "file `path` to write one JSON object per epoch to, one per line")
	fs.IntVar(&c.limit, "limit", 0, "use only the first `N` training and N test images, for quick runs (0: all)")
	fs.BoolVar(&c.quiet, "quiet", false, "print only the final line")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: train [flags]\n\nTrains the model on Fashion-MNIST (or another data set in MNIST's IDX format),\nevaluates it on the test set after every epoch and saves a checkpoint.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("%v (run with -h for the list of flags)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: the trainer takes only flags (run with -h for the list)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "batch":
			c.batchSet = true
		case "save":
			c.saveSet = true
		}
	})
	steps, err := parseSteps(c.lrStepsIn)
	if err != nil {
		return nil, err
	}
	c.lrSteps = steps
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseSteps parses the -lr-steps list.
func parseSteps(s string) ([]int, error) {
	var steps []int
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		e, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || e < 1 {
			return nil, fmt.Errorf("-lr-steps %q: %q is not an epoch number; give epochs counted from 1, separated by commas, such as -lr-steps 4 or -lr-steps 10,20", s, strings.TrimSpace(f))
		}
		steps = append(steps, e)
	}
	return steps, nil
}

// check reports the first flag value that cannot work.
func (c *config) check() error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case c.epochs < 1:
		return fmt.Errorf("-epochs %d: train for at least 1 epoch", c.epochs)
	case c.batch < 1:
		return fmt.Errorf("-batch %d: the batch size must be at least 1", c.batch)
	case !finite(c.lr) || c.lr <= 0:
		return fmt.Errorf("-lr %g: the learning rate must be a positive number", c.lr)
	case !finite(c.momentum) || c.momentum < 0 || c.momentum >= 1:
		return fmt.Errorf("-momentum %g: momentum must be in [0, 1)", c.momentum)
	case c.nesterov && c.momentum == 0:
		return errors.New("-nesterov needs a momentum above 0 (set -momentum)")
	case !finite(c.wd) || c.wd < 0:
		return fmt.Errorf("-wd %g: weight decay must be 0 or positive", c.wd)
	case !finite(c.lrGamma) || c.lrGamma <= 0:
		return fmt.Errorf("-lr-gamma %g: the learning-rate factor must be a positive number", c.lrGamma)
	case c.threads < 0:
		return fmt.Errorf("-threads %d: give a positive number of threads, or 0 for the default", c.threads)
	case c.limit < 0:
		return fmt.Errorf("-limit %d: give a positive number of images, or 0 for all", c.limit)
	case c.evalOnly && c.load == "":
		return errors.New("-eval-only needs a checkpoint to evaluate: add -load PATH")
	}
	return nil
}
