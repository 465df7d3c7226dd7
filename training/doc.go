// Package training trains EfficientAD's networks as the PUAD reference
// does, with files that either side can load:
//
//   - TrainTeacher distils the teacher PDN from the features of torchvision's
//     ImageNet WideResNet101-2 (models.WRNExtractor) on an ImageNet-style
//     folder, after computing the features' mean and standard deviation on
//     ImageNet samples (teacher/mu.pt, sigma.pt);
//   - TrainStudent trains a category's student and autoencoder against the
//     teacher (hard-feature loss, ImageNet penalty, autoencoder losses) and
//     computes the quantiles of the validation maps (models.EfficientAD.Maps);
//     scoring the test set (the reference's results.txt) is the caller's
//     (evaluate.EfficientADTestAUROC), so that training does not depend on
//     evaluation;
//   - RandomTeacher writes a teacher with default-initialised weights, for
//     trying the pipeline without ImageNet.
//
// Outputs follow the reference's model directory (models.Layout and its
// file names), plus a loss log (train_loss.csv, one row per iteration: its
// losses, then the learning rate it used) in the same folder and, while a
// run is unfinished, its checkpoint (CheckpointFile).
//
// Both trainings run one loop: resuming from the checkpoint,
// periodic checkpoints, interruption (a cancelled context saves a
// checkpoint and returns an InterruptedError), progress, the loss log and
// the prefetching of inputs. Errors a caller acts on match sentinel errors
// (ErrOutputExists, ErrCheckpointExists, ErrCheckpointMismatch,
// ErrNoTeacher, ErrNoWRNWeights, ErrNonFiniteLoss, ErrLocked,
// ErrInterrupted); the messages leave the how-to of a particular front end
// (flags) to the caller.
//
// A run fails closed: it holds a lock on its folder (LockFile), removes
// the temporary files of writes killed there before, stops at the first
// non-finite loss without touching its last checkpoint, and treats a
// checkpoint it cannot write on the way as a warning, so that the trained
// model is still saved.
//
// Every random decision (initial weights, images drawn, augmentations,
// grayscale conversions, dropout masks) comes from libtorch generators
// seeded from the run's seed, so a run is reproducible. A run saves
// checkpoints (networks, optimiser state, generator states, loss-log length)
// atomically every CheckpointEvery iterations and when its context is
// cancelled; resuming from one gives the same weights, bit for bit, as a run
// that was never stopped. Images are decoded and transformed in goroutines
// ahead of the training step.
package training
