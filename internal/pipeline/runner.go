package pipeline

// runnerState is the runner's in-memory state inside Service.
type runnerState struct{}
