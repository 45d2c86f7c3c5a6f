package tracking

// Service applies MLflow's tracking rules on top of a Store.
type Service struct {
	Store Store
}
