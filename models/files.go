package models

import "path/filepath"

// File names of the reference's model directory (see Layout).
const (
	// TeacherFile is the teacher PDN's state dict, in the teacher folder.
	TeacherFile = "teacher.pt"
	// MuFile and SigmaFile are per-channel statistics ([384] float32): of
	// the extractor's features on ImageNet in the teacher folder, of the
	// teacher's outputs on the category's training images in a category folder.
	MuFile    = "mu.pt"
	SigmaFile = "sigma.pt"
	// StudentFile and AutoEncoderFile are a category's trained networks.
	StudentFile     = "student.pt"
	AutoEncoderFile = "autoencoder.pt"
	// QuantileFile holds the quantiles of the validation maps (QuantileKeys).
	QuantileFile = "quantile.pt"
	// ResultsFile is the test AUROC after training, in the reference's text format.
	ResultsFile = "results.txt"
)

// Keys of QuantileFile: the 0.9 (a) and 0.995 (b) quantiles of the
// validation maps of each kind.
const (
	QuantileStudentA     = "q_a_student"
	QuantileStudentB     = "q_b_student"
	QuantileAutoEncoderA = "q_a_autoencoder"
	QuantileAutoEncoderB = "q_b_autoencoder"
)

// QuantileKeys are the entries of QuantileFile, in the file's order.
var QuantileKeys = []string{QuantileStudentA, QuantileStudentB, QuantileAutoEncoderA, QuantileAutoEncoderB}

// TeacherFiles are the files of the teacher folder, the teacher first.
// Only TeacherFile is needed to score images; the statistics serve training.
var TeacherFiles = []string{TeacherFile, MuFile, SigmaFile}

// CategoryFiles are the files of a category folder that a trained model
// needs, in the order LoadEfficientAD reads them.
var CategoryFiles = []string{StudentFile, AutoEncoderFile, MuFile, SigmaFile, QuantileFile}

// TeacherPath is the teacher's state dict, <TeacherDir>/teacher.pt.
func (l Layout) TeacherPath() string { return filepath.Join(l.TeacherDir(), TeacherFile) }
