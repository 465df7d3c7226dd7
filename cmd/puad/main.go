// Command puad evaluates, trains and applies EfficientAD and PUAD
// (Picturable and Unpicturable Anomaly Detection) on images, with libtorch
// doing the tensor work on the CPU or a CUDA GPU.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	tb "github.com/puad-go/puad/torchbind"
)

// version is the module version, set at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

func main() {
	app := newApp()
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "puad:", explain(err))
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "puad",
		Usage:   "EfficientAD and PUAD anomaly detection on libtorch",
		Version: version,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "threads", Usage: "libtorch intra-op threads (0: libtorch's default)", EnvVars: []string{"PUAD_THREADS"}},
			&cli.Int64Flag{Name: "max-image-pixels", Value: datasets.MaxImagePixels, EnvVars: []string{"PUAD_MAX_IMAGE_PIXELS"},
				Usage: "largest image (width × height) decoded, checked from its header (-1: no limit)"},
		},
		Before: func(c *cli.Context) error {
			if err := checkThreads(c.Int("threads")); err != nil {
				return err
			}
			if err := setMaxImagePixels(c.Int64("max-image-pixels")); err != nil {
				return err
			}
			if n := c.Int("threads"); n > 0 {
				tb.SetNumThreads(n)
			}
			return nil
		},
		Commands:       commands(),
		ExitErrHandler: func(c *cli.Context, err error) {},
	}
}

// commands are the verbs in the order `puad --help` lists them: the
// everyday ones first, then training, the paper's tables, the demo and the
// version. Each is defined in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		evalCommand(),
		fitCommand(),
		predictCommand(),
		serveCommand(),
		trainCommand(),
		reproduceCommand(),
		demoCommand(),
		versionCommand(),
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print versions, CUDA availability and thread count",
		Action: func(c *cli.Context) error {
			fmt.Printf("puad %s\n", version)
			fmt.Printf("libtorch %s\n", tb.TorchVersion())
			fmt.Printf("cuda available: %v (%d devices)\n", tb.CUDAAvailable(), tb.CUDADeviceCount())
			fmt.Printf("intra-op threads: %d\n", tb.NumThreads())
			return nil
		},
	}
}

var (
	interruptOnce sync.Once
	interruptDone = make(chan struct{})
)

// interrupted returns a channel closed on the first SIGINT/SIGTERM; a second
// one exits at once. The handler is installed once per process.
func interrupted() <-chan struct{} {
	interruptOnce.Do(func() {
		sig := make(chan os.Signal, 2)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			close(interruptDone)
			fmt.Fprintln(os.Stderr, "\npuad: interrupted, finishing cleanly (press Ctrl-C again to abort)")
			<-sig
			os.Exit(130)
		}()
	})
	return interruptDone
}

// interruptible returns a context cancelled on the first SIGINT/SIGTERM
// (long jobs then stop cleanly: training saves a checkpoint).
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-interrupted():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// usageError is a mistake on the command line.
func usageError(c *cli.Context, format string, a ...any) error {
	_ = cli.ShowSubcommandHelp(c)
	return errors.New(fmt.Sprintf(format, a...))
}
