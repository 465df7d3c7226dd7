// Package shard divides a run's ordered work units among the tasks of a
// cluster job array: a Spec names one share, K of N, and Owns says which
// units are its own.
//
// Units are dealt round-robin: shard K takes the units i with i mod N == K.
// Consecutive units of a run are alike (the same size and seed, categories
// of one dataset side by side), so dealing them out gives every shard a
// similar mix of cheap and costly units, and the shards of an array finish
// at about the same time; contiguous blocks would give one shard all the
// medium-size or all the MVTec AD units.
//
// FromEnv reads the share from the variables a scheduler sets in each task:
// Slurm's job arrays (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT and, when
// set, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_MAX, SLURM_ARRAY_TASK_STEP)
// and Kubernetes' Indexed Jobs (JOB_COMPLETION_INDEX, with the number of
// shards from the caller or CountVar, since Kubernetes does not export a
// Job's completions).
package shard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The environment variables FromEnv reads.
const (
	SlurmTaskID    = "SLURM_ARRAY_TASK_ID"
	SlurmTaskCount = "SLURM_ARRAY_TASK_COUNT"
	SlurmTaskMin   = "SLURM_ARRAY_TASK_MIN"
	SlurmTaskMax   = "SLURM_ARRAY_TASK_MAX"
	SlurmTaskStep  = "SLURM_ARRAY_TASK_STEP"
	// KubernetesIndex is the completion index of a pod of an Indexed Job.
	KubernetesIndex = "JOB_COMPLETION_INDEX"
	// CountVar gives the number of shards of an Indexed Job (its completions).
	CountVar = "PUAD_SHARD_COUNT"
)

// ErrNoCount is FromEnv's error when KubernetesIndex is set but neither the
// caller nor CountVar gives the number of shards.
var ErrNoCount = errors.New("the number of shards is unknown")

// Spec is one shard: Index K of Count N, 0 ≤ K < N.
type Spec struct {
	Index, Count int
}

// String is the spec as Parse reads it, "K/N".
func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Owns reports whether unit i (0-based, in the run's order) is the shard's.
func (s Spec) Owns(i int) bool { return i%s.Count == s.Index }

// Check reports whether 0 ≤ Index < Count.
func (s Spec) Check() error {
	if s.Count < 1 {
		return fmt.Errorf("shard %s: the number of shards must be at least 1", s)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %s: want an index from 0 to %d", s, s.Count-1)
	}
	return nil
}

// Parse reads "K/N".
func Parse(text string) (Spec, error) {
	k, n, ok := strings.Cut(strings.TrimSpace(text), "/")
	if !ok {
		return Spec{}, fmt.Errorf("%q: want K/N, shard K of N (0 ≤ K < N)", text)
	}
	var s Spec
	var err error
	if s.Index, err = strconv.Atoi(k); err != nil {
		return Spec{}, fmt.Errorf("%q: the index %q is not an integer", text, k)
	}
	if s.Count, err = strconv.Atoi(n); err != nil {
		return Spec{}, fmt.Errorf("%q: the count %q is not an integer", text, n)
	}
	return s, s.Check()
}

// LookupEnv is os.LookupEnv's signature.
type LookupEnv func(name string) (string, bool)

// FromEnv returns the shard of a Slurm array task or of a pod of a
// Kubernetes Indexed Job, and false when neither SlurmTaskID nor
// KubernetesIndex is set (an empty value counts as unset). count, when
// positive, is the number of shards: the count of an Indexed Job, checked
// against SLURM_ARRAY_TASK_COUNT in a Slurm task. Slurm is read first.
func FromEnv(env LookupEnv, count int) (Spec, bool, error) {
	get := func(name string) string {
		v, _ := env(name)
		return strings.TrimSpace(v)
	}
	var s Spec
	var err error
	switch {
	case get(SlurmTaskID) != "":
		s, err = fromSlurm(get, count)
	case get(KubernetesIndex) != "":
		s, err = fromKubernetes(get, count)
	default:
		return Spec{}, false, nil
	}
	if err != nil {
		return Spec{}, true, err
	}
	return s, true, nil
}

// fromSlurm maps an array task to a shard. It assumes an array of
// consecutive task ids (--array=M-L, step 1, any first id M): the shard is
// the task id less SLURM_ARRAY_TASK_MIN (0 when unset) of
// SLURM_ARRAY_TASK_COUNT shards. Arrays with gaps (a step, an id list) are
// refused, since their ids do not number the shards; so is a positive count
// other than the array's.
func fromSlurm(get func(string) string, count int) (Spec, error) {
	id, err := envInt(get, SlurmTaskID, true)
	if err != nil {
		return Spec{}, err
	}
	n, err := envInt(get, SlurmTaskCount, true)
	if err != nil {
		return Spec{}, err
	}
	first, err := envInt(get, SlurmTaskMin, false)
	if err != nil {
		return Spec{}, err
	}
	if step, err := envInt(get, SlurmTaskStep, false); err != nil {
		return Spec{}, err
	} else if get(SlurmTaskStep) != "" && step != 1 {
		return Spec{}, fmt.Errorf("%s=%d: shards need an array of consecutive task ids (step 1)", SlurmTaskStep, step)
	}
	if get(SlurmTaskMax) != "" {
		last, err := envInt(get, SlurmTaskMax, false)
		if err != nil {
			return Spec{}, err
		}
		if last-first+1 != n {
			return Spec{}, fmt.Errorf("%s=%d, %s=%d, %s=%d: shards need an array of consecutive task ids",
				SlurmTaskMin, first, SlurmTaskMax, last, SlurmTaskCount, n)
		}
	}
	if count > 0 && count != n {
		return Spec{}, fmt.Errorf("%s=%d: the array has %d tasks, not the %d shards given", SlurmTaskCount, n, n, count)
	}
	s := Spec{Index: id - first, Count: n}
	if err := s.Check(); err != nil {
		return Spec{}, fmt.Errorf("%s=%d, %s=%d, %s=%d: %w", SlurmTaskID, id, SlurmTaskMin, first, SlurmTaskCount, n, err)
	}
	return s, nil
}

// fromKubernetes maps a completion index (0 to completions − 1) to a shard
// of count shards, or of CountVar's when count is 0.
func fromKubernetes(get func(string) string, count int) (Spec, error) {
	k, err := envInt(get, KubernetesIndex, true)
	if err != nil {
		return Spec{}, err
	}
	if count <= 0 {
		if get(CountVar) == "" {
			return Spec{}, fmt.Errorf("%s=%d: %w (%s is not set)", KubernetesIndex, k, ErrNoCount, CountVar)
		}
		if count, err = envInt(get, CountVar, true); err != nil {
			return Spec{}, err
		}
	}
	s := Spec{Index: k, Count: count}
	if err := s.Check(); err != nil {
		return Spec{}, fmt.Errorf("%s=%d: %w", KubernetesIndex, k, err)
	}
	return s, nil
}

// envInt reads a non-negative integer variable; an unset one is 0, or an
// error when required.
func envInt(get func(string) string, name string, required bool) (int, error) {
	v := get(name)
	if v == "" {
		if required {
			return 0, fmt.Errorf("%s is not set", name)
		}
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: not a non-negative integer", name, v)
	}
	return n, nil
}
