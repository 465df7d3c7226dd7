package dist

import (
	"fmt"
	"os"
	"strconv"
)

// Env is what torchrun sets for each process it starts.
type Env struct {
	Rank, WorldSize, LocalRank int
	MasterAddr                 string
	MasterPort                 int
	// AgentStore is set under torchrun's elastic agent
	// (TORCHELASTIC_USE_AGENT_STORE=True): the agent itself serves the
	// store at MasterAddr:MasterPort, so every rank joins it as a client.
	AgentStore bool
}

// EnvError is a missing, malformed or out-of-range variable of the
// environment torchrun sets.
type EnvError struct {
	Var    string // e.g. "RANK"
	Value  string // its value ("" when missing)
	Reason string
}

func (e *EnvError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("dist: environment variable %s %s", e.Var, e.Reason)
	}
	return fmt.Sprintf("dist: environment variable %s=%q: %s", e.Var, e.Value, e.Reason)
}

// EnvFromOS reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT.
// present is false when WORLD_SIZE is unset (not a distributed run); then
// the other variables are ignored. Otherwise all five must be set and
// valid, and an *EnvError names the first that is not.
func EnvFromOS() (env Env, present bool, err error) {
	return envFrom(os.LookupEnv)
}

func envFrom(lookup func(string) (string, bool)) (Env, bool, error) {
	if _, ok := lookup("WORLD_SIZE"); !ok {
		return Env{}, false, nil
	}
	var env Env
	var err error
	if env.WorldSize, err = intVar(lookup, "WORLD_SIZE", 1, 1<<20); err != nil {
		return Env{}, true, err
	}
	if env.Rank, err = intVar(lookup, "RANK", 0, env.WorldSize-1); err != nil {
		return Env{}, true, err
	}
	if env.LocalRank, err = intVar(lookup, "LOCAL_RANK", 0, env.WorldSize-1); err != nil {
		return Env{}, true, err
	}
	addr, ok := lookup("MASTER_ADDR")
	if !ok || addr == "" {
		return Env{}, true, &EnvError{Var: "MASTER_ADDR", Reason: "is not set"}
	}
	env.MasterAddr = addr
	v, _ := lookup("TORCHELASTIC_USE_AGENT_STORE")
	env.AgentStore = v == "True"
	if env.MasterPort, err = intVar(lookup, "MASTER_PORT", 1, 65535); err != nil {
		return Env{}, true, err
	}
	return env, true, nil
}

// intVar parses an integer variable that must lie in [lo, hi].
func intVar(lookup func(string) (string, bool), name string, lo, hi int) (int, error) {
	s, ok := lookup(name)
	if !ok || s == "" {
		return 0, &EnvError{Var: name, Reason: "is not set"}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, &EnvError{Var: name, Value: s, Reason: "not an integer"}
	}
	if v < lo || v > hi {
		return 0, &EnvError{Var: name, Value: s, Reason: fmt.Sprintf("out of range %d..%d", lo, hi)}
	}
	return v, nil
}
