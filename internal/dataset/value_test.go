package dataset

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseText(t *testing.T) {
	us := func(s string) int64 {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	tests := []struct {
		in   string
		want TextValue
	}{
		{"0", TextValue{Type: TypeInteger}},
		{"42", TextValue{Type: TypeInteger, Int: 42}},
		{"-17", TextValue{Type: TypeInteger, Int: -17}},
		{"+7", TextValue{Type: TypeInteger, Int: 7}},
		{"007", TextValue{Type: TypeInteger, Int: 7}},
		{"9223372036854775807", TextValue{Type: TypeInteger, Int: math.MaxInt64}},
		{"-9223372036854775808", TextValue{Type: TypeInteger, Int: math.MinInt64}},
		{"9223372036854775808", TextValue{Type: TypeFloat, Float: 9223372036854775808}},
		{"1.5", TextValue{Type: TypeFloat, Float: 1.5}},
		{"-0.25", TextValue{Type: TypeFloat, Float: -0.25}},
		{".5", TextValue{Type: TypeFloat, Float: 0.5}},
		{"-.5e-3", TextValue{Type: TypeFloat, Float: -0.0005}},
		{"5.", TextValue{Type: TypeFloat, Float: 5}},
		{"1e3", TextValue{Type: TypeFloat, Float: 1000}},
		{"2E+2", TextValue{Type: TypeFloat, Float: 200}},
		{"1e400", TextValue{Type: TypeFloat, Float: math.Inf(1)}},
		{"-1e400", TextValue{Type: TypeFloat, Float: math.Inf(-1)}},
		{"inf", TextValue{Type: TypeFloat, Float: math.Inf(1)}},
		{"-inf", TextValue{Type: TypeFloat, Float: math.Inf(-1)}},
		{"+Inf", TextValue{Type: TypeFloat, Float: math.Inf(1)}},
		{"Infinity", TextValue{Type: TypeFloat, Float: math.Inf(1)}},
		{"-Infinity", TextValue{Type: TypeFloat, Float: math.Inf(-1)}},
		{"true", TextValue{Type: TypeBoolean, Bool: true}},
		{"TRUE", TextValue{Type: TypeBoolean, Bool: true}},
		{"False", TextValue{Type: TypeBoolean}},
		{"2012-01-01", TextValue{Type: TypeTimestamp, Micros: us("2012-01-01T00:00:00Z")}},
		{"1969-12-31", TextValue{Type: TypeTimestamp, Micros: -86400e6}},
		{"2000-02-29", TextValue{Type: TypeTimestamp, Micros: us("2000-02-29T00:00:00Z")}},
		{"0001-01-01", TextValue{Type: TypeTimestamp, Micros: us("0001-01-01T00:00:00Z")}},
		{"9999-12-31T23:59:59.999999Z", TextValue{Type: TypeTimestamp, Micros: us("9999-12-31T23:59:59.999999Z")}},
		{"2006-01-02T15:04:05Z", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05Z")}},
		{"2006-01-02T15:04:05+07:00", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05+07:00")}},
		{"2006-01-02T15:04:05-0730", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05-07:30")}},
		{"2006-01-02T15:04:05.123456789Z", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05.123456Z")}},
		{"2006-01-02 15:04:05", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05Z")}},
		{"2006-01-02 15:04:05.5", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05.5Z")}},
		{"2006-01-02T15:04:05.120", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05.12Z")}},
		{"2006-01-02t15:04:05z", TextValue{Type: TypeTimestamp, Micros: us("2006-01-02T15:04:05Z")}},
		// Strings.
		{"", TextValue{Type: TypeString}},
		{"NaN", TextValue{Type: TypeFloat, Float: math.NaN()}},
		{"nan", TextValue{Type: TypeFloat, Float: math.NaN()}},
		{"-", TextValue{Type: TypeString}},
		{"+", TextValue{Type: TypeString}},
		{".", TextValue{Type: TypeString}},
		{"-.", TextValue{Type: TypeString}},
		{"1e", TextValue{Type: TypeString}},
		{"1e+", TextValue{Type: TypeString}},
		{"e5", TextValue{Type: TypeString}},
		{"0x1p-2", TextValue{Type: TypeString}},
		{"0x10", TextValue{Type: TypeString}},
		{"1_000", TextValue{Type: TypeString}},
		{" 1", TextValue{Type: TypeString}},
		{"1 ", TextValue{Type: TypeString}},
		{"12abc", TextValue{Type: TypeString}},
		{"--1", TextValue{Type: TypeString}},
		{"-nan", TextValue{Type: TypeString}},
		{"infinit", TextValue{Type: TypeString}},
		{"nine", TextValue{Type: TypeString}},
		{"t", TextValue{Type: TypeString}},
		{"yes", TextValue{Type: TypeString}},
		{"truee", TextValue{Type: TypeString}},
		{"2006-13-02", TextValue{Type: TypeString}},
		{"2006-02-30", TextValue{Type: TypeString}},
		{"1900-02-29", TextValue{Type: TypeString}},
		{"2006-1-02", TextValue{Type: TypeString}},
		{"2006-01-02T", TextValue{Type: TypeString}},
		{"2006-01-02T15:04", TextValue{Type: TypeString}},
		{"2006-01-02T24:00:00", TextValue{Type: TypeString}},
		{"2006-01-02T15:60:00", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:60", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:05.", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:05.1234567890", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:05+7:00", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:05+24:00", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:05 UTC", TextValue{Type: TypeString}},
		{"2006-01-02T15:04:05Zx", TextValue{Type: TypeString}},
		{"2006-01-02x", TextValue{Type: TypeString}},
		{"1234-5678-90", TextValue{Type: TypeString}},
		{"drizzle", TextValue{Type: TypeString}},
	}
	for _, tt := range tests {
		got := ParseText(tt.in)
		same := got.Type == tt.want.Type && got.Int == tt.want.Int && got.Bool == tt.want.Bool &&
			got.Micros == tt.want.Micros &&
			(got.Float == tt.want.Float || math.IsNaN(got.Float) && math.IsNaN(tt.want.Float))
		if !same {
			t.Errorf("ParseText(%q): got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseTextAgreesWithTime(t *testing.T) {
	// Every day of a few years, at a few times and zones, against package
	// time.
	zones := []string{"", "Z", "+05:30", "-08:00", "+0100"}
	for d := time.Date(1899, 12, 25, 0, 0, 0, 0, time.UTC); d.Year() < 2102; d = d.AddDate(0, 0, 3) {
		for _, z := range zones {
			tm := d.Add(time.Duration(d.YearDay()) * 37 * time.Second)
			s := tm.Format("2006-01-02T15:04:05.000000") + z
			layout := "2006-01-02T15:04:05.000000Z07:00"
			if z == "+0100" {
				layout = "2006-01-02T15:04:05.000000Z0700"
			}
			ref, err := time.Parse(layout, s)
			if z == "" {
				ref, err = time.Parse("2006-01-02T15:04:05.000000", s)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ParseText(s)
			if got.Type != TypeTimestamp || got.Micros != ref.UnixMicro() {
				t.Fatalf("ParseText(%q): got %+v, want timestamp %d", s, got, ref.UnixMicro())
			}
		}
	}
}

func TestIsNullToken(t *testing.T) {
	for _, s := range []string{"", "NA", "N/A", "null", "NULL", "None", "#N/A"} {
		if !IsNullToken(s) || !isNullBytes([]byte(s)) {
			t.Errorf("IsNullToken(%q): got false, want true", s)
		}
	}
	for _, s := range []string{" ", "na", "n/a", "Null", "none", "NONE", "nan", "NaN", "0", "-", "#N/A ", "NA "} {
		if IsNullToken(s) || isNullBytes([]byte(s)) {
			t.Errorf("IsNullToken(%q): got true, want false", s)
		}
	}
}

// FuzzParseText checks that ParseText never panics and that what it
// returns is consistent with the text: integers round-trip through
// strconv, floats are what strconv.ParseFloat reads, booleans are the
// words, and timestamps agree with package time.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"0", "-12", "+7", "1.5e3", "NaN", "-inf", "true", "FALSE", "2006-01-02",
		"2006-01-02T15:04:05.999Z", "2006-01-02 15:04:05+01:00", "9223372036854775808", "abc", "", "1e", ".e1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := ParseText(s)
		switch v.Type {
		case TypeInteger:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n != v.Int {
				t.Fatalf("ParseText(%q) = integer %d, strconv says %d, %v", s, v.Int, n, err)
			}
			if back := ParseText(strconv.FormatInt(v.Int, 10)); back.Type != TypeInteger || back.Int != v.Int {
				t.Fatalf("integer %d does not round-trip: %+v", v.Int, back)
			}
		case TypeFloat:
			x, err := strconv.ParseFloat(s, 64)
			if err != nil && !strings.Contains(err.Error(), "range") {
				t.Fatalf("ParseText(%q) = float, strconv says %v", s, err)
			}
			if x != v.Float && !(math.IsNaN(x) && math.IsNaN(v.Float)) {
				t.Fatalf("ParseText(%q) = %v, strconv says %v", s, v.Float, x)
			}
			if strings.ContainsAny(s, "xX_pP") {
				t.Fatalf("ParseText(%q) = float, want hex and underscores to be strings", s)
			}
		case TypeBoolean:
			if !strings.EqualFold(s, strconv.FormatBool(v.Bool)) {
				t.Fatalf("ParseText(%q) = boolean %v", s, v.Bool)
			}
		case TypeTimestamp:
			checkTimestamp(t, s, v.Micros)
		case TypeString:
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				t.Fatalf("ParseText(%q) = string, but it is an integer", s)
			}
		default:
			t.Fatalf("ParseText(%q): type %q", s, v.Type)
		}
	})
}

// checkTimestamp checks a timestamp ParseText read against package time.
func checkTimestamp(t *testing.T, s string, micros int64) {
	t.Helper()
	norm := strings.NewReplacer("t", "T", "z", "Z", " ", "T").Replace(s)
	layouts := []string{"2006-01-02", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"}
	for _, l := range layouts {
		tm, err := time.Parse(l, norm)
		if err != nil {
			continue
		}
		if got, want := micros, tm.UnixMicro(); got != want {
			t.Fatalf("ParseText(%q) = %d µs, time says %d", s, got, want)
		}
		return
	}
	t.Fatalf("ParseText(%q) = timestamp, package time reads it with none of its layouts", s)
}
