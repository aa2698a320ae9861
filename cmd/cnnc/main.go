package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// A command is one of cnnc's subcommands.
type command struct {
	name  string
	short string // one line for the list of commands
	usage string // the usage line: "compile [flags] model.go"
	long  string // what it does, for -h
	flags func(fs *flag.FlagSet) func(ctx context.Context, env *env) error
}

// commands lists the subcommands in the order 'cnnc -h' shows them. It is
// filled in by init so that the commands can refer to it.
var commands []*command

func init() {
	commands = []*command{compileCmd, trainCmd, dumpCmd, versionCmd}
}

// env is what a running command sees.
type env struct {
	args   []string // positional arguments, after the flags
	extra  []string // arguments after "--"
	stdout io.Writer
	stderr io.Writer
}

// A usageError is a mistake on the command line; cnnc exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// An exitError carries the exit status of a program cnnc ran, which has
// already said what went wrong.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const mainUsage = `cnnc compiles convolutional networks declared in Go into Go packages.

Usage:

	cnnc <command> [flags] [arguments]

The commands are:

%s
Run 'cnnc <command> -h' for the flags of a command.
`

func printMainUsage(w io.Writer) {
	var list strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&list, "\t%-9s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, mainUsage, list.String())
}

// run runs cnnc with the given arguments and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) == 0 {
			printMainUsage(stdout)
			return 0
		}
		name, args = args[0], []string{"-h"}
	}
	var cmd *command
	for _, c := range commands {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "cnnc: unknown command %q\n\n", name)
		printMainUsage(stderr)
		return 2
	}

	fs := flag.NewFlagSet("cnnc "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	action := cmd.flags(fs)
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: cnnc %s\n\n%s", cmd.usage, cmd.long)
		fmt.Fprintln(w)
		var defaults strings.Builder
		fs.SetOutput(&defaults)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if defaults.Len() > 0 {
			fmt.Fprintf(w, "Flags:\n%s", defaults.String())
		}
	}
	e := &env{stdout: stdout, stderr: stderr}
	var err error
	e.args, e.extra, err = parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err == nil {
		err = action(ctx, e)
	}
	var uerr *usageError
	var xerr *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &xerr):
		return xerr.code
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "cnnc %s: %v\nusage: cnnc %s\nRun 'cnnc %s -h' for details.\n", cmd.name, err, cmd.usage, cmd.name)
		return 2
	}
	fmt.Fprintf(stderr, "cnnc: %v\n", err)
	return 1
}

// parseArgs parses flags and positional arguments in any order, up to an
// argument "--"; what follows it is returned as extra.
func parseArgs(fs *flag.FlagSet, args []string) (positional, extra []string, err error) {
	for i, a := range args {
		if a == "--" {
			args, extra = args[:i], append([]string{}, args[i+1:]...)
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, extra, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// oneModel returns the single model file among the arguments.
func oneModel(e *env) (string, error) {
	switch {
	case len(e.args) == 0:
		return "", usagef("name a model file, such as model.go")
	case len(e.args) > 1:
		return "", usagef("want one model file, got %d arguments: %s", len(e.args), strings.Join(e.args, " "))
	}
	return e.args[0], nil
}

// noExtra reports arguments after "--" given to a command that takes none.
func noExtra(e *env) error {
	if len(e.extra) > 0 {
		return usagef("unexpected arguments after --: %s", strings.Join(e.extra, " "))
	}
	return nil
}
