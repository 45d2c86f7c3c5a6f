package main

import "encoding/json"

// jsonSize returns the size of v encoded as JSON.
func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}
