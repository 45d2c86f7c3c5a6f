package quickstart

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWeatherDataIsTheSourceFile checks that the embedded data is
// vega-datasets 3.2.1's seattle-weather.csv byte for byte, as
// data/README.md says.
func TestWeatherDataIsTheSourceFile(t *testing.T) {
	sum := sha256.Sum256(weatherCSV)
	if got := hex.EncodeToString(sum[:]); got != WeatherSHA256 {
		t.Fatalf("sha256 of data/seattle-weather.csv = %s, want %s", got, WeatherSHA256)
	}
	days, err := parseWeather(weatherCSV)
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 1461 {
		t.Fatalf("got %d days, want 1461", len(days))
	}
	months := byMonth(days)
	for _, m := range append(append(append([]string{}, trainMonths...), testMonth), replayMonths...) {
		if n := len(months[m]); n < 28 || n > 31 {
			t.Errorf("month %s has %d days, want 28 to 31", m, n)
		}
	}
}

func TestParseWeatherErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "header"},
		{"header", "day,precipitation,temp_max,temp_min,wind,weather\n", `column 1 is "day"`},
		{"no rows", "date,precipitation,temp_max,temp_min,wind,weather\n", "no rows"},
		{"date", "date,precipitation,temp_max,temp_min,wind,weather\n2014-13-01,0,1,2,3,sun\n", "line 2: date"},
		{"number", "date,precipitation,temp_max,temp_min,wind,weather\n2014-01-01,x,1,2,3,sun\n", `line 2: precipitation "x"`},
		{"fields", "date,precipitation,temp_max,temp_min,wind,weather\n2014-01-01,0,1\n", "wrong number of fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWeather([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseWeather(f *testing.F) {
	f.Add(weatherCSV[:400])
	f.Add([]byte("date,precipitation,temp_max,temp_min,wind,weather\n2014-01-01,0,1,2,3,sun\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		days, err := parseWeather(b)
		if err == nil && len(days) == 0 {
			t.Fatal("no error and no days")
		}
	})
}

func TestWriteMonth(t *testing.T) {
	days, err := parseWeather([]byte("date,precipitation,temp_max,temp_min,wind,weather\n2014-01-01,0.5,1,-2,3,sun\n2014-01-02,0,4,2,1.5,rain\n"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a", "2014-01.csv")
	for _, tc := range []struct {
		invert bool
		want   string
	}{
		{false, "precipitation,temp_max,temp_min,wind,sunny\n0.5,1,-2,3,1\n0,4,2,1.5,0\n"},
		{true, "precipitation,temp_max,temp_min,wind,sunny\n0.5,1,-2,3,0\n0,4,2,1.5,1\n"},
	} {
		if err := writeMonth(path, days, tc.invert); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("invert=%t: got\n%s\nwant\n%s", tc.invert, b, tc.want)
		}
	}
}
