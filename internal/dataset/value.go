package dataset

import (
	"strconv"
)

// TextValue is a text field classified by ParseText: its Type and, for that
// type, its value. Int holds integers, Float floats, Bool booleans and
// Micros timestamps (microseconds since the Unix epoch, UTC); the other
// fields stay zero.
type TextValue struct {
	Type   Type
	Int    int64
	Float  float64
	Bool   bool
	Micros int64
}

// ParseText classifies a non-null text field as the narrowest type that
// reads it, trying in this order:
//
//   - integer: base-10 digits with an optional sign that fit an int64
//     ("-12", "+7", "007");
//   - float: decimal floating point as strconv.ParseFloat reads it, with an
//     optional exponent ("1.5", "-.5e-3", "1e400" is +Inf), the special
//     values "NaN", "Inf" and "Infinity" in any case with an optional sign,
//     and integers too large for an int64; hexadecimal floats and
//     underscores are not numbers here;
//   - boolean: "true" or "false" in any case;
//   - timestamp: "2006-01-02", or a date and a time "15:04:05" with an
//     optional fraction of up to nine digits, separated by "T", "t" or a
//     space, with an optional zone "Z", "z", "+07:00" or "-0700"; without a
//     zone the time is UTC; the fraction is truncated to microseconds;
//   - otherwise string.
//
// ParseText does not know null tokens: callers test IsNullToken first.
func ParseText(s string) TextValue {
	if s == "" {
		return TextValue{Type: TypeString}
	}
	c := s[0]
	switch {
	case c >= '0' && c <= '9':
		if len(s) >= 10 && s[4] == '-' {
			if us, ok := parseTimestamp(s); ok {
				return TextValue{Type: TypeTimestamp, Micros: us}
			}
			return TextValue{Type: TypeString}
		}
		return parseNumber(s)
	case c == '-' || c == '+' || c == '.':
		return parseNumber(s)
	case c == 'i' || c == 'I' || c == 'n' || c == 'N':
		if f, ok := parseSpecialFloat(s); ok {
			return TextValue{Type: TypeFloat, Float: f}
		}
	case c == 't' || c == 'T':
		if len(s) == 4 && lowerEq(s, "true") {
			return TextValue{Type: TypeBoolean, Bool: true}
		}
	case c == 'f' || c == 'F':
		if len(s) == 5 && lowerEq(s, "false") {
			return TextValue{Type: TypeBoolean}
		}
	}
	return TextValue{Type: TypeString}
}

// IsNullToken reports whether a text field stands for a missing value: the
// empty string, "NA", "N/A", "null", "NULL", "None" or "#N/A".
func IsNullToken(s string) bool {
	switch s {
	case "", "NA", "N/A", "null", "NULL", "None", "#N/A":
		return true
	}
	return false
}

// isNullBytes is IsNullToken for a byte slice, without allocating.
func isNullBytes(b []byte) bool {
	if len(b) > 4 {
		return false
	}
	return IsNullToken(string(b))
}

// lowerEq reports whether s equals the lower-case ASCII word w in any case.
func lowerEq(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// parseNumber classifies s, which starts with a digit, a sign or a point,
// as an integer, a float or a string.
func parseNumber(s string) TextValue {
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i = 1
		if len(s) == 1 {
			return TextValue{Type: TypeString}
		}
		if c := s[1]; c == 'i' || c == 'I' || c == 'n' || c == 'N' {
			if f, ok := parseSpecialFloat(s); ok {
				return TextValue{Type: TypeFloat, Float: f}
			}
			return TextValue{Type: TypeString}
		}
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i == len(s) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return TextValue{Type: TypeInteger, Int: n}
		}
		// Too large for an int64: a float.
	} else {
		// Decimal float shape: digits [. digits] [e [sign] digits], with at
		// least one mantissa digit.
		if s[i] == '.' {
			i++
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
				digits++
			}
		}
		if digits == 0 {
			return TextValue{Type: TypeString}
		}
		if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
			i++
			if i < len(s) && (s[i] == '-' || s[i] == '+') {
				i++
			}
			exp := 0
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
				exp++
			}
			if exp == 0 {
				return TextValue{Type: TypeString}
			}
		}
		if i != len(s) {
			return TextValue{Type: TypeString}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Only a range error is possible for this shape; ParseFloat then
		// returns ±Inf or ±0, which is the value the text denotes.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return TextValue{Type: TypeString}
		}
	}
	return TextValue{Type: TypeFloat, Float: f}
}

// parseSpecialFloat reads NaN and infinities: "nan", "inf", "infinity" in
// any case, infinities with an optional sign.
func parseSpecialFloat(s string) (float64, bool) {
	switch len(s) {
	case 3, 4, 8, 9:
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// parseTimestamp reads the timestamp forms ParseText accepts and returns
// microseconds since the Unix epoch.
func parseTimestamp(s string) (int64, bool) {
	year, ok1 := digitsAt(s, 0, 4)
	month, ok2 := digitsAt(s, 5, 2)
	day, ok3 := digitsAt(s, 8, 2)
	if !ok1 || !ok2 || !ok3 || s[7] != '-' {
		return 0, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return 0, false
	}
	us := daysFromCivil(year, month, day) * 86400e6
	if len(s) == 10 {
		return us, true
	}
	// Time: [Tt ]HH:MM:SS
	if len(s) < 19 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	hour, ok1 := digitsAt(s, 11, 2)
	minute, ok2 := digitsAt(s, 14, 2)
	sec, ok3 := digitsAt(s, 17, 2)
	if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	us += (int64(hour)*3600 + int64(minute)*60 + int64(sec)) * 1e6
	i := 19
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		frac := int64(0)
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if i-start < 6 {
				frac = frac*10 + int64(s[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 || n > 9 {
			return 0, false
		}
		for k := n; k < 6; k++ {
			frac *= 10
		}
		us += frac
	}
	if i == len(s) {
		return us, true
	}
	switch s[i] {
	case 'Z', 'z':
		if i+1 == len(s) {
			return us, true
		}
		return 0, false
	case '+', '-':
		var zh, zm int
		var ok1, ok2 bool
		switch len(s) - i {
		case 6: // +07:00
			if s[i+3] != ':' {
				return 0, false
			}
			zh, ok1 = digitsAt(s, i+1, 2)
			zm, ok2 = digitsAt(s, i+4, 2)
		case 5: // +0700
			zh, ok1 = digitsAt(s, i+1, 2)
			zm, ok2 = digitsAt(s, i+3, 2)
		default:
			return 0, false
		}
		if !ok1 || !ok2 || zh > 23 || zm > 59 {
			return 0, false
		}
		off := (int64(zh)*3600 + int64(zm)*60) * 1e6
		if s[i] == '+' {
			return us - off, true
		}
		return us + off, true
	}
	return 0, false
}

// digitsAt reads n decimal digits of s at i.
func digitsAt(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// daysIn returns the number of days of a month of the proleptic Gregorian
// calendar.
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar (the "days from civil" algorithm: shift the
// year to start in March so that the leap day is last, then count 400-year
// eras of 146097 days).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // floor division: years -400 .. -1 are era -1
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
