package gbdt

import (
	"context"
	"math"
)

// MetricName returns the evaluation metric training reports and early
// stopping watches for an objective (XGBoost's default eval_metric):
// logloss, mlogloss or rmse.
func MetricName(obj Objective) string {
	switch obj {
	case BinaryLogistic:
		return "logloss"
	case MultiSoftprob:
		return "mlogloss"
	}
	return "rmse"
}

// baseScore returns the model's base_score, in the output space: the
// (weighted) mean label for binary:logistic, clamped into [1e-6, 1−1e-6],
// and for reg:squarederror; 0.5 for multi:softprob, as XGBoost 1.7. The
// value is rounded to what its written form reads back as.
func baseScore(cfg Config, d *Data) float32 {
	if cfg.Objective == MultiSoftprob {
		return 0.5
	}
	var sum, wsum float64
	for i, y := range d.Labels {
		w := 1.0
		if d.Weights != nil {
			w = float64(d.Weights[i])
		}
		sum += w * float64(y)
		wsum += w
	}
	mean := 0.5
	if wsum > 0 {
		mean = sum / wsum
	}
	if cfg.Objective == BinaryLogistic {
		mean = min(max(mean, 1e-6), 1-1e-6)
	}
	return float32(mean)
}

// gradients computes every row's gradient pair for each class into gp from
// the current margins and, when withLoss, returns the objective's metric at
// those margins (the training metric after the rounds done so far; NaN
// otherwise).
func gradients(ctx context.Context, cfg Config, margins, labels, weights []float32, gp [][]gpair, withLoss bool) (float64, error) {
	n := len(labels)
	k := cfg.groups()
	chunks := (n + chunkRows - 1) / chunkRows
	loss := make([]float64, chunks)
	wsum := make([]float64, chunks)
	err := parallelFor(ctx, chunks, cfg.Threads, func(ch int) {
		var l, ws float64
		var prob []float32
		if k > 1 {
			prob = make([]float32, k)
		}
		for i := ch * chunkRows; i < min((ch+1)*chunkRows, n); i++ {
			w := float32(1)
			if weights != nil {
				w = weights[i]
			}
			y := labels[i]
			ws += float64(w)
			switch cfg.Objective {
			case BinaryLogistic:
				p := sigmoid32(margins[i])
				h := max(p*(1-p), 1e-16)
				gp[0][i] = gpair{(p - y) * w, h * w}
				if withLoss {
					l += float64(w) * logloss(float64(p), float64(y))
				}
			case RegSquaredError:
				d := margins[i] - y
				gp[0][i] = gpair{d * w, w}
				l += float64(w) * float64(d) * float64(d)
			case MultiSoftprob:
				copy(prob, margins[i*k:(i+1)*k])
				softmax32(prob)
				label := int(y)
				for c, p := range prob {
					g := p
					if c == label {
						g = p - 1
					}
					gp[c][i] = gpair{g * w, max(2*p*(1-p)*w, 1e-16)}
				}
				if withLoss {
					l += float64(w) * -math.Log(clampProb(float64(prob[label])))
				}
			}
		}
		loss[ch], wsum[ch] = l, ws
	})
	if err != nil {
		return 0, err
	}
	if !withLoss {
		return math.NaN(), nil
	}
	var l, ws float64
	for i := range loss {
		l += loss[i]
		ws += wsum[i]
	}
	return finishMetric(cfg.Objective, l, ws), nil
}

// finishMetric turns a weighted loss sum into the metric.
func finishMetric(obj Objective, sum, wsum float64) float64 {
	if wsum == 0 {
		return math.NaN()
	}
	if obj == RegSquaredError {
		return math.Sqrt(sum / wsum)
	}
	return sum / wsum
}

// evalMetric returns the objective's metric of margins against labels.
func evalMetric(cfg Config, margins, labels, weights []float32) float64 {
	k := cfg.groups()
	var l, ws float64
	prob := make([]float32, k)
	for i, y := range labels {
		w := 1.0
		if weights != nil {
			w = float64(weights[i])
		}
		ws += w
		switch cfg.Objective {
		case BinaryLogistic:
			l += w * logloss(float64(sigmoid32(margins[i])), float64(y))
		case RegSquaredError:
			d := float64(margins[i] - y)
			l += w * d * d
		case MultiSoftprob:
			copy(prob, margins[i*k:(i+1)*k])
			softmax32(prob)
			l += w * -math.Log(clampProb(float64(prob[int(y)])))
		}
	}
	return finishMetric(cfg.Objective, l, ws)
}

func clampProb(p float64) float64 { return min(max(p, 1e-16), 1-1e-16) }

// logloss is the log loss of probability p for label y (0 or 1).
func logloss(p, y float64) float64 {
	p = clampProb(p)
	if y == 1 {
		return -math.Log(p)
	}
	if y == 0 {
		return -math.Log(1 - p)
	}
	return -(y*math.Log(p) + (1-y)*math.Log(1-p))
}

// sigmoid32, exp32 and softmax32 compute in float32 exactly as the native
// runtime (internal/serving/xgboost) does, so the trainer's predictions
// equal the runtime's.
func sigmoid32(x float32) float32 {
	e := float32(math.Exp(float64(-x)))
	return 1 / (1 + e)
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

func softmax32(v []float32) {
	mx := v[0]
	for _, x := range v[1:] {
		mx = max(mx, x)
	}
	var sum float64
	for i, x := range v {
		v[i] = exp32(x - mx)
		sum += float64(v[i])
	}
	s := float32(sum)
	for i := range v {
		v[i] /= s
	}
}
