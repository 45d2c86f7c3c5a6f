package pipeline

// triggerState is the trigger controller's in-memory state inside Service.
type triggerState struct{}
