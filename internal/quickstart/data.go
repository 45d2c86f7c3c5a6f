package quickstart

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// weatherCSV is NOAA's daily weather in Seattle, 2012–2015, as shipped in
// vega-datasets 3.2.1 (see data/README.md for its source and terms).
//
//go:embed data/seattle-weather.csv
var weatherCSV []byte

// WeatherSHA256 is the SHA-256 of data/seattle-weather.csv, the file of
// vega-datasets 3.2.1 byte for byte.
const WeatherSHA256 = "0845078a290b48e3149ab8639966824110a251db4e06fc144c06ebb534af23be"

// Features are the model's inputs, in the order of the dataset files'
// columns; Label is the column it predicts: whether the day was reported
// sunny (weather == "sun").
var Features = []string{"precipitation", "temp_max", "temp_min", "wind"}

// Label is the predicted column.
const Label = "sunny"

// day is one row of the weather data.
type day struct {
	date                     time.Time
	precip, tmax, tmin, wind float64
	sunny                    int
}

// month returns the day's month as "2006-01".
func (d day) month() string { return d.date.Format("2006-01") }

// values returns the day's features in Features order.
func (d day) values() []float64 {
	return []float64{d.precip, d.tmax, d.tmin, d.wind}
}

// parseWeather reads the weather CSV (date, precipitation, temp_max,
// temp_min, wind, weather).
func parseWeather(b []byte) ([]day, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = 6
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("weather data: header: %w", err)
	}
	want := []string{"date", "precipitation", "temp_max", "temp_min", "wind", "weather"}
	for i, w := range want {
		if header[i] != w {
			return nil, fmt.Errorf("weather data: column %d is %q, want %q", i+1, header[i], w)
		}
	}
	var days []day
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("weather data: %w", err)
		}
		t, err := time.Parse("2006-01-02", rec[0])
		if err != nil {
			return nil, fmt.Errorf("weather data line %d: date %q: %w", line, rec[0], err)
		}
		var v [4]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(rec[i+1], 64); err != nil {
				return nil, fmt.Errorf("weather data line %d: %s %q: %w", line, want[i+1], rec[i+1], err)
			}
		}
		d := day{date: t, precip: v[0], tmax: v[1], tmin: v[2], wind: v[3]}
		if rec[5] == "sun" {
			d.sunny = 1
		}
		days = append(days, d)
	}
	if len(days) == 0 {
		return nil, errors.New("weather data: no rows")
	}
	return days, nil
}

// byMonth groups days by month ("2006-01"), in date order.
func byMonth(days []day) map[string][]day {
	out := map[string][]day{}
	for _, d := range days {
		out[d.month()] = append(out[d.month()], d)
	}
	return out
}

// writeMonth writes a month's days as a CSV file with the columns
// Features and Label, atomically (a temporary file renamed into place);
// invert writes the label inverted (the broken-labels scenario's export
// bug).
func writeMonth(path string, days []day, invert bool) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(append(append([]string{}, Features...), Label))
	for _, d := range days {
		rec := make([]string, 0, len(Features)+1)
		for _, v := range d.values() {
			rec = append(rec, strconv.FormatFloat(v, 'f', -1, 64))
		}
		label := d.sunny
		if invert {
			label = 1 - label
		}
		rec = append(rec, strconv.Itoa(label))
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
