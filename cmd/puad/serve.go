package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "score images posted over HTTP with the models and PUAD fits of one or more categories",
		ArgsUsage: "MODELS",
		Description: "Loads the model of each --category (and of each --name, a plain folder's model) and the\n" +
			"fit `puad fit` stored for it and answers POST /v1/predict (the image as the body, or as the file\n" +
			"of a multipart form; ?category=NAME when several are served; ?heatmap=png adds the overlay) with\n" +
			"the scores, the verdict (invalid, with null scores, when the score is not a number), the\n" +
			"threshold and timings as JSON. GET / is a page to try it, /healthz and /readyz report the\n" +
			"state, /metrics serves Prometheus metrics. Concurrent requests of a category are scored\n" +
			"together, up to --max-batch (1 keeps the scores of `puad predict` bit for bit). It listens\n" +
			"on this machine only unless --addr says otherwise, and stops cleanly on SIGINT or SIGTERM.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "category", Usage: "a category `DIR` to serve (repeatable; its name and its parent's name select the model)"},
			&cli.StringSliceFlag{Name: "name", Usage: "the model `NAME` of a plain folder to serve (repeatable; MODELS/<size>_size/custom/NAME)"},
			sizeFlag, extractorFlag, deviceFlag, teacherFlag, precisionFlag,
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "`HOST:PORT` to listen on"},
			&cli.IntFlag{Name: "max-batch", Usage: "most concurrent images per forward pass (default: 1 on CPU, bit-exact; 8 on CUDA)"},
			&cli.DurationFlag{Name: "max-wait", Value: serve.DefaultMaxWait, Usage: "how long a request waits for others to batch with"},
			&cli.IntFlag{Name: "queue", Value: serve.DefaultQueueSize, Usage: "images that may wait per category before requests get 503"},
			&cli.Int64Flag{Name: "max-body", Value: serve.DefaultMaxBodyBytes, Usage: "largest request body in bytes (413 above)"},
			&cli.Int64Flag{Name: "max-pixels", Value: 50_000_000, Usage: "largest image, width × height, accepted (413 above)"},
			&cli.DurationFlag{Name: "timeout", Value: serve.DefaultTimeout, Usage: "time limit of a prediction request (504 after it)"},
			&cli.DurationFlag{Name: "grace", Value: 30 * time.Second, Usage: "how long shutdown waits for requests in progress"},
			&cli.BoolFlag{Name: "log-json", Usage: "log JSON records instead of text"},
		},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "serve needs MODELS, got %d arguments", c.NArg())
	}
	if len(c.StringSlice("category"))+len(c.StringSlice("name")) == 0 {
		return usageError(c, "serve needs at least one --category DIR or --name NAME")
	}
	extractor := ""
	if c.IsSet("feature-extractor") {
		extractor = c.String("feature-extractor")
	}
	opts, err := detectorOptions(c.String("size"), extractor, c.String("device"), c.String("precision"))
	if err != nil {
		return err
	}
	opts.BatchSize = c.Int("max-batch")
	opts.Decode = datasets.DecodeOptions{MaxPixels: c.Int64("max-pixels")}
	opts.TeacherFile = c.String("teacher")
	var dets []*detector.Detector
	defer func() {
		for _, d := range dets {
			d.Close()
		}
	}()
	for _, cat := range c.StringSlice("category") {
		d, err := loadDetector(c.Args().First(), cat, "", opts)
		if err != nil {
			return err
		}
		dets = append(dets, d)
	}
	for _, name := range c.StringSlice("name") {
		d, err := loadDetector(c.Args().First(), "", name, opts)
		if err != nil {
			return err
		}
		dets = append(dets, d)
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if c.Bool("log-json") {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	logger := slog.New(h)
	srv, err := serve.New(dets, serve.Config{
		MaxBatch: dets[0].BatchSize(), MaxWait: c.Duration("max-wait"), QueueSize: c.Int("queue"),
		MaxBodyBytes: c.Int64("max-body"), Timeout: c.Duration("timeout"), Logger: logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		srv.Close()
		return fmt.Errorf("--addr: %w", err)
	}
	logger.Info("serving", "addr", "http://"+ln.Addr().String(), "categories", servedNames(dets), "max_batch", dets[0].BatchSize())
	ctx, cancel := interruptible(c.Context)
	defer cancel()
	if err := srv.Serve(ctx, ln, c.Duration("grace")); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// servedNames are the names of the served categories.
func servedNames(dets []*detector.Detector) []string {
	names := make([]string, len(dets))
	for i, d := range dets {
		names[i] = d.Category()
	}
	return names
}
