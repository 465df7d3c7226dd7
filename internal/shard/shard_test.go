package shard

import (
	"errors"
	"strings"
	"testing"
)

// TestParse: "K/N" with 0 ≤ K < N.
func TestParse(t *testing.T) {
	for text, want := range map[string]Spec{"0/1": {0, 1}, "2/3": {2, 3}, " 1/4 ": {1, 4}} {
		if s, err := Parse(text); err != nil || s != want {
			t.Errorf("%q: %v, %v", text, s, err)
		}
	}
	for text, want := range map[string]string{"3/3": "want an index from 0 to 2", "0/0": "at least 1", "-1/2": "want an index",
		"1": "want K/N", "a/2": `index "a"`, "1/b": `count "b"`, "": "want K/N"} {
		if _, err := Parse(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

// TestOwns: round-robin, every unit in exactly one shard.
func TestOwns(t *testing.T) {
	const n, units = 3, 10
	var got [n][]int
	for k := 0; k < n; k++ {
		for i := 0; i < units; i++ {
			if (Spec{k, n}).Owns(i) {
				got[k] = append(got[k], i)
			}
		}
	}
	if len(got[0]) != 4 || got[0][1] != 3 || len(got[1]) != 3 || got[1][0] != 1 || got[2][2] != 8 {
		t.Errorf("shares %v", got)
	}
}

func env(vars map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// TestFromEnv: Slurm arrays (first id from SLURM_ARRAY_TASK_MIN), Kubernetes
// Indexed Jobs (count given or from PUAD_SHARD_COUNT), and neither.
func TestFromEnv(t *testing.T) {
	for _, c := range []struct {
		name  string
		vars  map[string]string
		count int
		want  Spec
	}{
		{"slurm from 0", map[string]string{SlurmTaskID: "2", SlurmTaskCount: "4", SlurmTaskMin: "0", SlurmTaskMax: "3", SlurmTaskStep: "1"}, 0, Spec{2, 4}},
		{"slurm from 1", map[string]string{SlurmTaskID: "1", SlurmTaskCount: "3", SlurmTaskMin: "1", SlurmTaskMax: "3"}, 0, Spec{0, 3}},
		{"slurm without min", map[string]string{SlurmTaskID: "1", SlurmTaskCount: "3"}, 0, Spec{1, 3}},
		{"slurm, count agrees", map[string]string{SlurmTaskID: "11", SlurmTaskCount: "2", SlurmTaskMin: "10"}, 2, Spec{1, 2}},
		{"slurm before kubernetes", map[string]string{SlurmTaskID: "0", SlurmTaskCount: "2", KubernetesIndex: "1"}, 0, Spec{0, 2}},
		{"kubernetes, count given", map[string]string{KubernetesIndex: "4", CountVar: "9"}, 5, Spec{4, 5}},
		{"kubernetes, count from env", map[string]string{KubernetesIndex: "0", CountVar: "2"}, 0, Spec{0, 2}},
	} {
		s, found, err := FromEnv(env(c.vars), c.count)
		if err != nil || !found || s != c.want {
			t.Errorf("%s: %v %v %v, want %v", c.name, s, found, err, c.want)
		}
	}
	if _, found, err := FromEnv(env(map[string]string{SlurmTaskID: "", KubernetesIndex: " "}), 3); found || err != nil {
		t.Errorf("no array: %v %v", found, err)
	}
}

// TestFromEnvErrors: malformed or inconsistent variables are errors naming them.
func TestFromEnvErrors(t *testing.T) {
	for _, c := range []struct {
		vars  map[string]string
		count int
		want  string
	}{
		{map[string]string{SlurmTaskID: "x", SlurmTaskCount: "2"}, 0, `SLURM_ARRAY_TASK_ID="x": not a non-negative integer`},
		{map[string]string{SlurmTaskID: "1"}, 0, "SLURM_ARRAY_TASK_COUNT is not set"},
		{map[string]string{SlurmTaskID: "1", SlurmTaskCount: "2", SlurmTaskMin: "-1"}, 0, `SLURM_ARRAY_TASK_MIN="-1"`},
		{map[string]string{SlurmTaskID: "4", SlurmTaskCount: "2", SlurmTaskMin: "0", SlurmTaskMax: "4", SlurmTaskStep: "4"}, 0, "SLURM_ARRAY_TASK_STEP=4"},
		{map[string]string{SlurmTaskID: "7", SlurmTaskCount: "3", SlurmTaskMin: "0", SlurmTaskMax: "7"}, 0, "SLURM_ARRAY_TASK_MAX=7"},
		{map[string]string{SlurmTaskID: "3", SlurmTaskCount: "3"}, 0, "SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=3: shard 3/3"},
		{map[string]string{SlurmTaskID: "0", SlurmTaskCount: "3"}, 4, "SLURM_ARRAY_TASK_COUNT=3: the array has 3 tasks, not the 4 shards given"},
		{map[string]string{KubernetesIndex: "1.5"}, 2, `JOB_COMPLETION_INDEX="1.5"`},
		{map[string]string{KubernetesIndex: "2"}, 2, "JOB_COMPLETION_INDEX=2: shard 2/2"},
		{map[string]string{KubernetesIndex: "0", CountVar: "many"}, 0, `PUAD_SHARD_COUNT="many"`},
		{map[string]string{KubernetesIndex: "0", CountVar: "0"}, 0, "at least 1"},
	} {
		_, found, err := FromEnv(env(c.vars), c.count)
		if !found || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v (count %d): %v, want %q", c.vars, c.count, err, c.want)
		}
	}
	_, _, err := FromEnv(env(map[string]string{KubernetesIndex: "1"}), 0)
	if !errors.Is(err, ErrNoCount) || !strings.Contains(err.Error(), "JOB_COMPLETION_INDEX=1") || !strings.Contains(err.Error(), CountVar) {
		t.Errorf("no count: %v", err)
	}
}
