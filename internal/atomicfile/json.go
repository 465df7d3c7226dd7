package atomicfile

import (
	"encoding/json"
	"fmt"
)

// WriteJSON writes v to path atomically (DefaultPerm) as JSON indented by
// two spaces with a final newline: the format of every JSON file puad writes
// (`puad eval --json`, reproduce's kept runs, `puad predict --json`).
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFile(path, append(data, '\n'), DefaultPerm)
}
