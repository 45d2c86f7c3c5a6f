package registry

// Service applies MLflow's registry rules on top of a Store.
type Service struct {
	Store Store
}
