package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/internal/shard"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/training"
)

func reproduceCommand() *cli.Command {
	return &cli.Command{
		Name:  "reproduce",
		Usage: "evaluate EfficientAD and PUAD on every category of MVTec LOCO AD and MVTec AD and compare with the paper",
		Description: "Finds the categories under ROOT/mvtec_loco_anomaly_detection and ROOT/mvtec_anomaly_detection (a\n" +
			"category is a folder with train/ and test/), evaluates each with the models in MODELS (the\n" +
			"reference's layout) and prints the README's tables with the published value and the\n" +
			"difference beside each measured one, and for MVTec LOCO AD the AUROC per anomaly type\n" +
			"(logical, structural). Categories the paper reports but ROOT lacks, and categories whose\n" +
			"model files are missing, are listed as missing; the others still run.\n\n" +
			"results.json, results.csv and results.md go to --out, with one result file per category\n" +
			"under --out/runs; a rerun skips the categories already there (--force redoes them).\n\n" +
			"--train retrains first: the teacher once per size (with --imagenet and --wrn-weights) and\n" +
			"each category's student and autoencoder, per seed into MODELS/seed<k>; models already\n" +
			"there are kept unless --force. With several --seeds the tables show mean ± standard\n" +
			"deviation over seeds. --seeds without --train evaluates MODELS/seed<k> as they are.\n\n" +
			"On a cluster, --shard K/N runs only shard K of N (0 ≤ K < N): the category runs i with\n" +
			"i mod N = K, in the order of the run without shards. Each shard needs an --out of its own;\n" +
			"it writes shard.json and units.json there instead of the tables. Without --shard, a Slurm\n" +
			"array task takes its shard from SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of\n" +
			"SLURM_ARRAY_TASK_COUNT (an array of consecutive ids), a pod of a Kubernetes Indexed Job\n" +
			"from JOB_COMPLETION_INDEX of --shard-count (or PUAD_SHARD_COUNT) shards. A shard of\n" +
			"several never trains the teacher they share: with --train, train it first. When all are done,\n" +
			"`puad reproduce --merge --out DIR SHARD_DIR...` writes the tables and files of the run\n" +
			"without shards, byte for byte, and exits non-zero when a category run failed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "`ROOT` holding mvtec_loco_anomaly_detection/ and/or mvtec_anomaly_detection/ (required)"},
			&cli.StringFlag{Name: "models", Usage: "model directory `MODELS` (the reference's layout; required)"},
			&cli.StringFlag{Name: "size", Value: "s", Usage: "EfficientAD sizes, comma-separated: s, m or s,m"},
			extractorFlag,
			&cli.StringFlag{Name: "categories", Usage: "only these categories, comma-separated"},
			&cli.StringFlag{Name: "out", Value: "reproduce-out", Usage: "output `DIR`"},
			deviceFlag, batchFlag, quietFlag, precisionFlag,
			&cli.BoolFlag{Name: "force", Usage: "redo categories whose results (and, with --train, models) exist"},
			&cli.BoolFlag{Name: "train", Usage: "train the teacher and the students before evaluating"},
			&cli.StringFlag{Name: "imagenet", Usage: "ImageNet training folder `PATH` (for --train)"},
			&cli.StringFlag{Name: "wrn-weights", Usage: "torchvision's wide_resnet101_2 weights `FILE` (for --train)"},
			&cli.StringFlag{Name: "seeds", Usage: "training seeds, comma-separated (models in MODELS/seed<k>); default 0 with --train"},
			&cli.IntFlag{Name: "teacher-iterations", Usage: "teacher training iterations (0: the reference's)"},
			&cli.IntFlag{Name: "student-iterations", Usage: "student training iterations (0: the reference's)"},
			&cli.StringFlag{Name: "shard", Usage: "run only shard `K/N` of the category runs (0 ≤ K < N) into --out, for --merge; default from Slurm's or Kubernetes' array variables"},
			&cli.IntFlag{Name: "shard-count", Usage: "the number of shards `N` of a Kubernetes Indexed Job (its completions; or PUAD_SHARD_COUNT)"},
			&cli.BoolFlag{Name: "merge", Usage: "merge the shards' output folders, given as arguments, into --out"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("merge") {
				return mergeAction(c, os.Stdout)
			}
			if c.NArg() != 0 {
				return usageError(c, "reproduce takes no arguments (use --data and --models), got %q", c.Args().Slice())
			}
			if c.String("data") == "" || c.String("models") == "" {
				return usageError(c, "reproduce needs --data ROOT and --models MODELS")
			}
			if err := checkModelFlags(c); err != nil {
				return err
			}
			cfg, err := reproduceConfigFrom(c)
			if err != nil {
				return err
			}
			if cfg.Shard, err = shardFrom(c, os.LookupEnv); err != nil {
				return err
			}
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			_, err = runReproduce(ctx, cfg, c.Bool("quiet"), os.Stdout, os.Stderr)
			return err
		},
	}
}

// reproduceConfigFrom checks the flags of `puad reproduce` and turns them
// into a run's configuration.
func reproduceConfigFrom(c *cli.Context) (reproduce.Config, error) {
	cfg := reproduce.Config{
		DataRoot: c.String("data"), ModelRoot: c.String("models"), OutDir: c.String("out"),
		BatchSize: c.Int("batch-size"), Force: c.Bool("force"), Categories: splitList(c.String("categories")),
	}
	var err error
	if cfg.Extractor, err = evaluate.ParseExtractor(c.String("feature-extractor")); err != nil {
		return cfg, err
	}
	if cfg.Precision, err = models.ParsePrecision(c.String("precision")); err != nil {
		return cfg, err
	}
	for _, s := range splitList(c.String("size")) {
		size, err := models.ParseSize(s)
		if err != nil {
			return cfg, err
		}
		if !slices.Contains(cfg.Sizes, size) {
			cfg.Sizes = append(cfg.Sizes, size)
		}
	}
	if len(cfg.Sizes) == 0 {
		return cfg, errors.New("--size: no size given")
	}
	for _, s := range splitList(c.String("seeds")) {
		k, err := strconv.Atoi(s)
		if err != nil || k < 0 {
			return cfg, fmt.Errorf("--seeds: %q is not a non-negative integer", s)
		}
		if !slices.Contains(cfg.Seeds, k) {
			cfg.Seeds = append(cfg.Seeds, k)
		}
	}
	if c.Bool("train") {
		if cfg.Train, err = trainSettingsFrom(c); err != nil {
			return cfg, err
		}
		if len(cfg.Seeds) == 0 {
			cfg.Seeds = []int{0}
		}
	}
	if cfg.Device, err = tb.ParseDevice(c.String("device")); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// trainSettingsFrom checks the inputs of --train.
func trainSettingsFrom(c *cli.Context) (*reproduce.TrainSettings, error) {
	ts := &reproduce.TrainSettings{ImageNet: c.String("imagenet"), WRNWeights: c.String("wrn-weights"),
		TeacherIterations: c.Int("teacher-iterations"), StudentIterations: c.Int("student-iterations")}
	if ts.ImageNet == "" || ts.WRNWeights == "" {
		return nil, errors.New("--train needs --imagenet PATH and --wrn-weights FILE (the teacher is distilled from WideResNet101-2 on ImageNet)")
	}
	if info, err := os.Stat(ts.ImageNet); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("--imagenet %s: not a folder", ts.ImageNet)
	}
	if _, err := os.Stat(ts.WRNWeights); err != nil {
		return nil, fmt.Errorf("--wrn-weights %s: %v; %s", ts.WRNWeights, err, training.WRNWeightsHelp())
	}
	return ts, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runReproduce runs reproduce with a progress bar (unless quiet) and one
// line per category on log, then prints the tables and the written files
// to out.
func runReproduce(ctx context.Context, cfg reproduce.Config, quiet bool, out, log io.Writer) (*report.Report, error) {
	bar := newProgressBar(quiet)
	cfg.Progress = bar.Update
	cfg.Log = log
	cfg.Finished = func(o reproduce.Outcome) {
		run := o.Run
		if run.Status != report.StatusOK {
			fmt.Fprintf(log, "%s: %s: %s\n", o.Label, run.Status, run.Reason)
			return
		}
		note := ""
		switch {
		case o.Kept:
			note = " (kept from an earlier run; --force redoes it)"
		case run.Reason != "":
			note = " (" + run.Reason + ")"
		}
		fmt.Fprintf(log, "%s: efficient_ad auroc %.4f, puad auroc %.4f%s\n", o.Label, run.EfficientADAUROC, run.PUADAUROC, note)
	}
	rep, err := reproduce.Run(ctx, cfg)
	if err != nil {
		return rep, err
	}
	if cfg.Shard != nil {
		return rep, shardDone(cfg, rep, out)
	}
	return rep, writeTables(rep, cfg.OutDir, out)
}

// writeTables prints the tables of a run or a merge and the files written
// into dir; the error names the failed category runs.
func writeTables(rep *report.Report, dir string, out io.Writer) error {
	if err := rep.WriteText(out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nwritten: %s\n", strings.Join(reproduce.ReportFiles(dir), ", "))
	return reproduce.Failures(rep)
}

// shardDone says what a shard wrote. A shard that finished succeeds even
// when some of its category runs failed: they are in its output, and the
// merge reports them and fails.
func shardDone(cfg reproduce.Config, rep *report.Report, out io.Writer) error {
	fmt.Fprintf(out, "shard %s: %d category runs\n", cfg.Shard, len(rep.Runs))
	if err := reproduce.Failures(rep); err != nil {
		fmt.Fprintf(out, "%v (the merge reports them; rerun this shard to retry them)\n", err)
	}
	fmt.Fprintf(out, "written: %s (merge the shards' folders with puad reproduce --merge)\n",
		strings.Join(reproduce.ShardFiles(cfg.OutDir), ", "))
	return nil
}

// mergeAction is `puad reproduce --merge --out DIR SHARD_DIR...`.
func mergeAction(c *cli.Context, out io.Writer) error {
	for _, name := range []string{"data", "models", "shard", "shard-count", "train", "seeds", "size", "categories",
		"feature-extractor", "precision", "force"} {
		if c.IsSet(name) {
			return usageError(c, "--merge takes the shards' folders and --out, not --%s (the shards' settings are in their folders)", name)
		}
	}
	if c.NArg() == 0 {
		return usageError(c, "--merge needs the output folders of the shards as arguments")
	}
	rep, err := reproduce.Merge(c.Args().Slice(), c.String("out"))
	if err != nil {
		return err
	}
	return writeTables(rep, c.String("out"), out)
}

// shardFrom is the shard of `puad reproduce`: --shard K/N, else the
// scheduler's variables in env; nil without either.
func shardFrom(c *cli.Context, env shard.LookupEnv) (*shard.Spec, error) {
	count := c.Int("shard-count")
	if count < 0 || c.IsSet("shard-count") && count == 0 {
		return nil, usageError(c, "--shard-count %d: want the number of shards, at least 1", count)
	}
	if c.IsSet("shard") {
		s, err := shard.Parse(c.String("shard"))
		if err != nil {
			return nil, fmt.Errorf("--shard: %w", err)
		}
		if count > 0 && count != s.Count {
			return nil, usageError(c, "--shard %s and --shard-count %d disagree", s, count)
		}
		return &s, nil
	}
	s, found, err := shard.FromEnv(env, count)
	if err != nil {
		return nil, err
	}
	if !found {
		if count > 0 {
			return nil, usageError(c, "--shard-count needs %s (a pod of a Kubernetes Indexed Job) or --shard", shard.KubernetesIndex)
		}
		return nil, nil
	}
	return &s, nil
}
