package quickstart

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop/internal/story"
)

// Summary is what a quickstart run did.
type Summary struct {
	Scenario Scenario      `json:"scenario"`
	Server   string        `json:"server"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// Datasets are the dataset versions pushed, in order.
	Datasets []DatasetRow `json:"datasets"`
	// Models are the model versions the pipeline registered, in order.
	Models []*ModelRow `json:"models"`
	// Windows are the monitoring windows of the replayed months.
	Windows []WindowRow `json:"windows"`
	// Alerts are the alerts that fired.
	Alerts []AlertRow `json:"alerts"`
	// Serving is the model version the deployment's primary serves at the
	// end ("weather/2").
	Serving string `json:"serving"`
	// RetrainPromoted: a retrain an alert caused was promoted through a
	// canary. RetrainStopped: one was stopped by the gate or its canary.
	RetrainPromoted bool `json:"retrain_promoted"`
	RetrainStopped  bool `json:"retrain_stopped"`
	// Story is the deployment's story at the end (mloop story weather).
	Story *story.Story `json:"story,omitempty"`
}

// DatasetRow is one dataset version pushed.
type DatasetRow struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Months  string `json:"months"`
	Rows    int64  `json:"rows"`
}

// ModelRow is one model version registered by the pipeline.
type ModelRow struct {
	Version int64  `json:"version"`
	Run     string `json:"run"`
	// TrainedOn lists the dataset versions the run read.
	TrainedOn string `json:"trained_on"`
	// TestAccuracy is the candidate's accuracy on the newest month;
	// ChampionAccuracy the champion's on the same month (nil without one).
	TestAccuracy     float64  `json:"test_accuracy"`
	ChampionAccuracy *float64 `json:"champion_accuracy,omitempty"`
	Blessed          bool     `json:"blessed"`
	// CausedBy names the alert that caused the run ("" for the first).
	CausedBy string `json:"caused_by,omitempty"`
	// CanaryRevision is the revision it served as a canary.
	CanaryRevision int64 `json:"canary_revision,omitempty"`
	// Outcome: serving, canary, promoted, rolled back, rejected by the
	// gate.
	Outcome string `json:"outcome"`
	// LiveAccuracy over LiveLabels labelled predictions it served.
	LiveAccuracy float64 `json:"live_accuracy"`
	LiveLabels   int64   `json:"live_labels"`
}

// WindowRow is one monitoring window of one model version.
type WindowRow struct {
	Month           string   `json:"month"`
	ModelVersion    string   `json:"model_version"`
	Rows            int64    `json:"rows"`
	Errors          int64    `json:"errors"`
	Labels          int64    `json:"labels"`
	Accuracy        float64  `json:"accuracy"`
	DriftStatus     string   `json:"drift_status"`
	DriftShare      float64  `json:"drift_share"`
	DatasetDrift    bool     `json:"dataset_drift"`
	DriftedFeatures []string `json:"drifted_features,omitempty"`
}

// AlertRow is one alert that fired.
type AlertRow struct {
	ID           string  `json:"id"`
	Rule         string  `json:"rule"`
	ModelVersion string  `json:"model_version"`
	Value        float64 `json:"value"`
	Threshold    float64 `json:"threshold"`
}

// WriteText writes the summary as tables for people.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSummary — scenario %s, %s\n\n", s.Scenario, s.Elapsed)
	fmt.Fprintln(tw, "DATASET VERSION\tCONTENT\tROWS")
	for _, d := range s.Datasets {
		fmt.Fprintf(tw, "%s@%d\t%s\t%d\n", d.Name, d.Version, d.Months, d.Rows)
	}
	fmt.Fprintln(tw, "\nMODEL VERSION\tTRAINED ON\tTEST ACC\tCHAMPION ACC\tGATE\tCAUSED BY\tOUTCOME\tLIVE ACC (LABELS)")
	for _, m := range s.Models {
		champ := "—"
		if m.ChampionAccuracy != nil {
			champ = fmt.Sprintf("%.3f", *m.ChampionAccuracy)
		}
		gate := "rejected"
		if m.Blessed {
			gate = "blessed"
		}
		cause := m.CausedBy
		if cause == "" {
			cause = "quickstart (first model)"
		}
		live := "—"
		if m.LiveLabels > 0 {
			live = fmt.Sprintf("%.3f (%d)", m.LiveAccuracy, m.LiveLabels)
		}
		fmt.Fprintf(tw, "%s/%d\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\n", Model, m.Version, m.TrainedOn, m.TestAccuracy, champ, gate, cause, m.Outcome, live)
	}
	fmt.Fprintln(tw, "\nMONTH\tMODEL VERSION\tROWS\tERRORS\tACCURACY (LABELS)\tDRIFT")
	for _, r := range s.Windows {
		acc := "—"
		if r.Labels > 0 {
			acc = fmt.Sprintf("%.3f (%d)", r.Accuracy, r.Labels)
		}
		drift := r.DriftStatus
		if len(r.DriftedFeatures) > 0 {
			drift = strings.Join(r.DriftedFeatures, ", ")
			if r.DatasetDrift {
				drift += " (dataset drift)"
			}
		} else if r.DriftStatus == "ok" {
			drift = "none"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", r.Month, r.ModelVersion, r.Rows, r.Errors, acc, drift)
	}
	if len(s.Alerts) > 0 {
		fmt.Fprintln(tw, "\nALERT\tRULE\tMODEL VERSION\tVALUE\tTHRESHOLD")
		for _, a := range s.Alerts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.3f\n", a.ID, a.Rule, a.ModelVersion, a.Value, a.Threshold)
		}
	}
	fmt.Fprintf(tw, "\nServing now: %s. A retrain caused by an alert was promoted: %s; stopped: %s.\n", s.Serving, yes(s.RetrainPromoted), yes(s.RetrainStopped))
	return tw.Flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
