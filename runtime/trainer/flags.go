package trainer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cnnc/cnnc/runtime"
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

// The values of -dataset and -preprocess.
var (
	datasets     = []string{"fashion", "mnist", "cifar10", "folder"}
	preprocesses = []string{"none", "pixel", "channel"}
)

// config is the parsed command line.
type config struct {
	data      string
	dataset   string
	val       float64
	epochs    int
	batch     int
	batchSet  bool // -batch was given
	lr        float64
	momentum  float64
	nesterov  bool
	wd        float64
	l1        float64
	elastic   [2]float64 // lambda, beta; lambda 0 for none
	lrSteps   []int      // epochs counted from 1
	lrGamma   float64
	schedule  runtime.Schedule
	seed      uint64
	threads   int
	pre       string // none, pixel or channel
	std       bool
	init      *runtime.Init // nil: the model's own
	augment   string
	save      string
	saveSet   bool // -save was given, possibly as ""
	load      string
	resume    string
	evalOnly  bool
	metrics   string
	metricsOK bool // -metrics was given, possibly as ""
	csv       string
	csvSet    bool // -metrics-csv was given, possibly as ""
	limit     int
	quiet     bool
	device    string // cpu, cuda or auto
	tta       string // test-time augmentation: "" or flip
	snapshots int    // snapshot ensemble of the last K cosine cycles; 0: none
	ensemble  []string

	// run holds the flags that define the run, as "-name=value", which a
	// checkpoint keeps so that -resume continues the same run.
	run []string
}

// sessionFlags are the flags that say where a run's output goes rather than
// what the run is; -resume does not take them from the checkpoint.
var sessionFlags = []string{"save", "load", "resume", "eval-only", "ensemble", "metrics", "metrics-csv", "quiet", "threads", "device"}

// rawFlags holds the flags whose values are checked after parsing.
type rawFlags struct {
	lrSteps, schedule, elastic, init, ensemble string
	warmup                                     float64
	mean                                       bool
}

// parseFlags parses args into a config and checks the values. It returns
// flag.ErrHelp, after printing the usage to stdout, for -h.
func parseFlags(args []string, stdout io.Writer) (*config, error) {
	c := &config{}
	var r rawFlags
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.StringVar(&c.data, "data", "", "data set `directory`: for -dataset fashion and mnist the four IDX files, plain or gzipped (fashion's default: /usr/share/datasets/fashion-mnist if present, else the embedded subset); for cifar10 the binary batches; for folder one sub-folder of images per class, or train/ and test/ folders of those")
	fs.StringVar(&c.dataset, "dataset", "fashion", "data set `kind`: fashion, mnist (IDX files), cifar10 (binary batches) or folder (PNG and JPEG images, one sub-folder per class, resized to the model's input)")
	fs.Float64Var(&c.val, "val", 0, "`fraction` of the training set held out, class by class, as a validation split whose accuracy is reported every epoch (0: none)")
	fs.IntVar(&c.epochs, "epochs", defaultEpochs, "number of epochs to train")
	fs.IntVar(&c.batch, "batch", defaultBatch, "mini-batch size, at most the model's compiled batch size")
	fs.Float64Var(&c.lr, "lr", defaultLR, "base learning rate, which the schedule starts from")
	fs.Float64Var(&c.momentum, "momentum", defaultMomentum, "SGD momentum, in [0, 1)")
	fs.BoolVar(&c.nesterov, "nesterov", false, "use Nesterov momentum")
	fs.Float64Var(&c.wd, "wd", 0, "L2 weight decay of every parameter, applied by the optimiser: the gradient of (wd/2)*sum w^2")
	fs.Float64Var(&c.l1, "l1", 0, "L1 penalty `lambda`*sum |w| on the weights (not biases or batch-norm): lambda*sign(w) is added to their gradients")
	fs.StringVar(&r.elastic, "elastic", "", "elastic-net penalty `lambda:beta`, lambda*sum(beta*w^2 + |w|) on the weights: lambda*(2*beta*w + sign w) is added to their gradients")
	fs.StringVar(&r.lrSteps, "lr-steps", defaultLRSteps, "for the default schedule: comma-separated `epochs`, counted from 1, from which the learning rate is multiplied by -lr-gamma (\"\" for none)")
	fs.Float64Var(&c.lrGamma, "lr-gamma", defaultLRGamma, "factor of each learning-rate step of the default schedule")
	fs.StringVar(&r.schedule, "schedule", "", "learning-rate `schedule`, epochs counted from 0: constant, step:E1,E2:GAMMA, exp:GAMMA, inv:K, cosine:T0[:TMULT[:MIN]], warmup:E+SCHED (default: the steps of -lr-steps and -lr-gamma); evaluated at every batch")
	fs.Float64Var(&r.warmup, "warmup", 0, "`epochs` of linear learning-rate warm-up in front of the schedule, from 1% of it (0: none)")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of initialisation, shuffling, augmentation and dropout")
	fs.IntVar(&c.threads, "threads", 0, "worker threads of the kernels (0: CNNC_THREADS if set, else all cores)")
	fs.StringVar(&c.pre, "preprocess", "pixel", "input normalisation computed on the training set: `none`, pixel (subtract the mean image) or channel (subtract each channel's mean)")
	fs.BoolVar(&c.std, "std", false, "also divide by the training set's standard deviation, per pixel or per channel as -preprocess says")
	fs.BoolVar(&r.mean, "mean", true, "subtract the training set's mean image; -mean=false is -preprocess none")
	fs.StringVar(&r.init, "init", "", "initialise every weight (rank >= 2) with `scheme`, overriding the model's: const:V, normal:STD, xavier_normal, xavier_uniform, kaiming_normal[:fan_out], kaiming_uniform[:fan_out] (aliases glorot_*, he_*); biases and batch-norm keep theirs")
	fs.StringVar(&c.augment, "augment", "", "data augmentation of every training batch, seeded, such as `flip,crop:4,rotate:20,jitter:0.05`: flip, vflip, crop:PAD, scale:S, rotate:DEG, translate:F, jitter:J (\"\": none)")
	fs.StringVar(&c.save, "save", "", "checkpoint `path` written after every epoch (default <model>.safetensors in the current directory, or the -resume checkpoint; -save \"\" saves nothing)")
	fs.StringVar(&c.load, "load", "", "checkpoint `path` whose weights and preprocessing to start from, with a fresh optimiser and schedule")
	fs.StringVar(&c.resume, "resume", "", "checkpoint `path` of a run to continue where it stopped: its flags, weights, optimiser, schedule, data order and random streams; flags given with it override the run's, such as -epochs")
	fs.BoolVar(&c.evalOnly, "eval-only", false, "evaluate the -load checkpoint (or the -ensemble) on the test set and exit")
	fs.StringVar(&r.ensemble, "ensemble", "", "with -eval-only: comma-separated checkpoint `paths` of the same model, evaluated together as a model ensemble (the mean of their soft-max probabilities)")
	fs.StringVar(&c.tta, "tta", "", "test-time augmentation of every evaluation: `flip` scores an image by the mean of the soft-max probabilities of it and its mirror image (\"\": none)")
	fs.IntVar(&c.snapshots, "snapshots", 0, "snapshot ensemble: with a cosine schedule, save the model at the end of every period as <checkpoint>.cycle<N>.safetensors and, after training, evaluate the last `K` together (0: none)")
	fs.StringVar(&c.metrics, "metrics", "", "file `path` to write one JSON object per epoch to, one per line (default: beside the checkpoint, <checkpoint>.metrics.jsonl)")
	fs.StringVar(&c.csv, "metrics-csv", "", "file `path` to write the metrics to as CSV, a row per epoch (default: beside the checkpoint, <checkpoint>.metrics.csv)")
	fs.IntVar(&c.limit, "limit", 0, "use only the first `N` training and N test images, for quick runs (0: all)")
	fs.BoolVar(&c.quiet, "quiet", false, "print only the final line")
	fs.StringVar(&c.device, "device", deviceCPU, "where to train and evaluate: `cpu`, cuda (an NVIDIA GPU: the model's CUDA kernels, with the SGD step on the GPU) or auto (cuda if a GPU is usable, else cpu)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: train [flags]\n\nTrains the model on Fashion-MNIST (or MNIST, CIFAR-10 or a folder of images),\nevaluates it on the test set after every epoch and saves a checkpoint.\n\nFlags:\n")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if !slices.Contains(sessionFlags, f.Name) {
			c.run = append(c.run, "-"+f.Name+"="+f.Value.String())
		}
	})
	c.batchSet, c.saveSet, c.metricsOK, c.csvSet = set["batch"], set["save"], set["metrics"], set["metrics-csv"]

	steps, err := parseSteps(r.lrSteps)
	if err != nil {
		return nil, err
	}
	c.lrSteps = steps
	if set["mean"] && !r.mean {
		if set["preprocess"] && c.pre != "none" {
			return nil, fmt.Errorf("-mean=false and -preprocess %s disagree; give one of them", c.pre)
		}
		c.pre = "none"
	}
	if r.ensemble != "" {
		c.ensemble = strings.Split(r.ensemble, ",")
		if slices.Contains(c.ensemble, "") {
			return nil, fmt.Errorf("-ensemble %q: give checkpoint paths separated by single commas", r.ensemble)
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if r.init != "" {
		in, err := runtime.ParseInit(r.init)
		if err != nil {
			return nil, fmt.Errorf("-init: %w", err)
		}
		c.init = &in
	}
	if r.elastic != "" {
		if c.elastic, err = parseElastic(r.elastic); err != nil {
			return nil, err
		}
	}
	if r.schedule != "" && set["lr-steps"] || r.schedule != "" && set["lr-gamma"] {
		return nil, fmt.Errorf("-lr-steps and -lr-gamma shape the default schedule only; with -schedule put the steps in it, such as -schedule step:3,6:0.1")
	}
	if c.schedule, err = buildSchedule(c, r.schedule, r.warmup); err != nil {
		return nil, err
	}
	return c, nil
}

// buildSchedule returns the learning-rate schedule of the flags: spec
// parsed by runtime.ParseSchedule, or the steps of -lr-steps, with warmup
// epochs of warm-up in front.
func buildSchedule(c *config, spec string, warmup float64) (runtime.Schedule, error) {
	var s runtime.Schedule
	if spec == "" {
		steps := make([]int, len(c.lrSteps))
		for i, e := range c.lrSteps {
			steps[i] = e - 1 // runtime.StepDecay counts epochs from 0
		}
		s = runtime.StepDecay{Base: c.lr, Gamma: c.lrGamma, StepEpochs: steps}
	} else {
		var err error
		if s, err = runtime.ParseSchedule(spec, c.lr); err != nil {
			return nil, fmt.Errorf("-schedule: %w", err)
		}
	}
	if math.IsNaN(warmup) || math.IsInf(warmup, 0) || warmup < 0 {
		return nil, fmt.Errorf("-warmup %g: give a number of epochs >= 0", warmup)
	}
	if warmup > 0 {
		if _, ok := s.(runtime.Warmup); ok {
			return nil, fmt.Errorf("-warmup %g: -schedule %q has a warm-up already; give one of them", warmup, spec)
		}
		s = runtime.Warmup{Epochs: warmup, Start: runtime.DefaultWarmupStart, Inner: s}
	}
	return s, nil
}

// parseElastic parses -elastic LAMBDA:BETA.
func parseElastic(s string) ([2]float64, error) {
	l, b, ok := strings.Cut(s, ":")
	lambda, err1 := strconv.ParseFloat(strings.TrimSpace(l), 64)
	beta, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if !ok || err1 != nil || err2 != nil || !finite(lambda) || !finite(beta) || lambda < 0 || beta < 0 {
		return [2]float64{}, fmt.Errorf("-elastic %q: give LAMBDA:BETA, two numbers >= 0, such as -elastic 1e-4:0.5 for 1e-4*sum(0.5*w^2 + |w|)", s)
	}
	return [2]float64{lambda, beta}, nil
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

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// check reports the first flag value that cannot work.
func (c *config) check() error {
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
	case !finite(c.l1) || c.l1 < 0:
		return fmt.Errorf("-l1 %g: the L1 penalty must be 0 or positive", c.l1)
	case !finite(c.lrGamma) || c.lrGamma <= 0:
		return fmt.Errorf("-lr-gamma %g: the learning-rate factor must be a positive number", c.lrGamma)
	case c.threads < 0:
		return fmt.Errorf("-threads %d: give a positive number of threads, or 0 for the default", c.threads)
	case c.limit < 0:
		return fmt.Errorf("-limit %d: give a positive number of images, or 0 for all", c.limit)
	case !(c.val >= 0 && c.val < 1):
		return fmt.Errorf("-val %g: give the fraction of the training set to hold out, in [0, 1)", c.val)
	case !slices.Contains(devices, c.device):
		return fmt.Errorf("-device %q: want cpu, cuda or auto", c.device)
	case !slices.Contains(datasets, c.dataset):
		return fmt.Errorf("-dataset %q: want one of %s", c.dataset, strings.Join(datasets, ", "))
	case !slices.Contains(preprocesses, c.pre):
		return fmt.Errorf("-preprocess %q: want none, pixel (mean image) or channel (mean of each channel)", c.pre)
	case c.std && c.pre == "none":
		return errors.New("-std divides by the standard deviation after subtracting the mean; give -preprocess pixel or channel with it")
	case c.evalOnly && c.load == "" && len(c.ensemble) == 0:
		return errors.New("-eval-only needs a checkpoint to evaluate: add -load PATH, or -ensemble with a comma-separated list of checkpoints")
	case len(c.ensemble) > 0 && !c.evalOnly:
		return errors.New("-ensemble evaluates checkpoints together; give -eval-only with it")
	case len(c.ensemble) > 0 && c.load != "":
		return errors.New("-ensemble and -load both name checkpoints to evaluate: give one")
	case c.tta != "" && c.tta != "flip":
		return fmt.Errorf("-tta %q: the test-time augmentation this trainer knows is flip", c.tta)
	case c.snapshots < 0:
		return fmt.Errorf("-snapshots %d: give how many of the last cosine periods to evaluate together, or 0 for none", c.snapshots)
	case c.resume != "" && c.load != "":
		return errors.New("-resume and -load both give a checkpoint to start from; -resume continues a run, -load only takes its weights: give one")
	case c.resume != "" && c.evalOnly:
		return errors.New("-eval-only evaluates a -load checkpoint; use -load with it, not -resume")
	}
	return nil
}
