package tracking

// Service applies MLflow's tracking rules on top of a Store.
type Service struct {
	Store Store
}

// LoggedModels applies MLflow 3's logged-model rules on top of a store.
type LoggedModels struct{}
