package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

var trainCmd = &command{
	name:  "train",
	short: "compile a model and run its trainer",
	usage: "train [-func name] [-batch n] [-tags tags] [-keep] [-v] model.go [-- trainer flags]",
	long: `Train compiles the model function of model.go into a temporary package next
to the model, builds the package's trainer and runs it in the current
directory with the trainer flags that follow "--", for example

	cnnc train -func LeNet5 models/lenet5/model.go -- -epochs 1

Run 'cnnc train model.go -- -h' for the trainer's flags.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
		var t trainFlags
		fs.BoolVar(&t.keep, "keep", false, "keep the generated package and print where it is")
		t.modelFlags.register(fs)
		return t.run
	},
}

type trainFlags struct {
	modelFlags
	keep bool
}

func (t *trainFlags) run(ctx context.Context, e *env) error {
	file, err := oneModel(e)
	if err != nil {
		return err
	}
	tm := newTimer(t.log(e))
	m, err := t.load(ctx, e, file)
	if err != nil {
		return err
	}
	tm.step("load model")

	// The package goes inside the model's module, so that it resolves
	// cnnc's runtime exactly as the model resolves cnnc's ir.
	dir, err := os.MkdirTemp(m.Dir, "_cnnc-train-")
	if err != nil {
		return err
	}
	if t.keep {
		fmt.Fprintf(e.stderr, "cnnc: the generated package is in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	pkg := packageName(m.Func)
	if pkg == "" {
		pkg = "model"
	}
	c := compileFlags{modelFlags: t.modelFlags, out: dir, pkg: pkg, cuda: true}
	files, err := c.generate(m, dir)
	if err != nil {
		return err
	}
	if _, err := writeFiles(dir, files); err != nil {
		return err
	}
	tm.step("passes, codegen, write")

	bin := filepath.Join(dir, "train")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := append([]string{"build", "-o", bin}, t.buildFlags()...)
	args = append(args, "./cmd/train")
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = dir
	build.Stdout, build.Stderr = e.stderr, e.stderr
	if err := build.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("build the trainer of %s: %w", m.Func, err)
	}
	tm.step("build trainer")

	if t.verbose {
		fmt.Fprintf(e.stderr, "cnnc: run trainer %s\n", strings.Join(e.extra, " "))
	}
	trainer := exec.CommandContext(ctx, bin, e.extra...)
	trainer.Stdin, trainer.Stdout, trainer.Stderr = os.Stdin, e.stdout, e.stderr
	// On Ctrl-C the trainer gets the signal too; give it time to finish
	// the way it chooses.
	trainer.Cancel = func() error { return trainer.Process.Signal(os.Interrupt) }
	trainer.WaitDelay = 10 * time.Second
	err = trainer.Run()
	tm.step("train")
	var xerr *exec.ExitError
	if errors.As(err, &xerr) && xerr.ExitCode() > 0 {
		// The trainer has said what went wrong.
		return &exitError{xerr.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("run the trainer of %s: %w", m.Func, err)
	}
	return nil
}
