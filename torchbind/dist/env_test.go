package dist

import (
	"errors"
	"strings"
	"testing"
)

func TestEnvFromOS(t *testing.T) {
	full := map[string]string{"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
	for k, v := range full {
		t.Setenv(k, v)
	}
	t.Setenv("TORCHELASTIC_USE_AGENT_STORE", "")
	env, present, err := EnvFromOS()
	want := Env{Rank: 1, WorldSize: 2, LocalRank: 0, MasterAddr: "10.0.0.1", MasterPort: 29500}
	if err != nil || !present || env != want {
		t.Fatalf("EnvFromOS = %+v, %v, %v; want %+v", env, present, err, want)
	}

	cases := []struct {
		name, variable, value string // value "-" unsets the variable
	}{
		{"rank missing", "RANK", "-"},
		{"rank malformed", "RANK", "one"},
		{"rank too large", "RANK", "2"},
		{"rank negative", "RANK", "-1"},
		{"world size malformed", "WORLD_SIZE", "2x"},
		{"world size zero", "WORLD_SIZE", "0"},
		{"local rank missing", "LOCAL_RANK", "-"},
		{"local rank out of range", "LOCAL_RANK", "5"},
		{"address missing", "MASTER_ADDR", "-"},
		{"address empty", "MASTER_ADDR", ""},
		{"port missing", "MASTER_PORT", "-"},
		{"port malformed", "MASTER_PORT", "http"},
		{"port zero", "MASTER_PORT", "0"},
		{"port too large", "MASTER_PORT", "65536"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				if k == c.variable {
					return c.value, c.value != "-"
				}
				v, ok := full[k]
				return v, ok
			}
			_, present, err := envFrom(lookup)
			var ee *EnvError
			if !present || !errors.As(err, &ee) || ee.Var != c.variable || !strings.Contains(err.Error(), c.variable) {
				t.Errorf("present %v, err %v: want an *EnvError naming %s", present, err, c.variable)
			}
		})
	}

	t.Run("torchrun agent store", func(t *testing.T) {
		t.Setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
		env, _, err := EnvFromOS()
		if err != nil || !env.AgentStore {
			t.Errorf("under torchrun's agent: %+v, %v; want AgentStore", env, err)
		}
	})

	t.Run("not distributed", func(t *testing.T) {
		env, present, err := envFrom(func(k string) (string, bool) {
			if k == "WORLD_SIZE" {
				return "", false
			}
			return full[k], true
		})
		if present || err != nil || env != (Env{}) {
			t.Errorf("without WORLD_SIZE: %+v, %v, %v", env, present, err)
		}
	})
}
