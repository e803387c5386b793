package asciicast

import (
	"bytes"
	"fmt"
)

// timeProblem checks the time of an event against the previous event's time,
// both given as the text of valid JSON numbers at most maxTimeLen long (prev
// empty for the first event: then it stands for 0). It returns nil or why
// the time is bad: out of float64's range, negative, or less than prev.
//
// The comparison is of float64 values, as a player sees them, but it parses
// nothing in the common case: numbers without an exponent are compared as
// decimal text, and a decimal that is not smaller cannot round to a smaller
// float64. Only a time that looks smaller, or one with an exponent, is
// parsed. Numbers without an exponent cannot overflow: 64 digits are far
// below the largest float64.
func timeProblem(t, prev []byte) error {
	if hasExponent(t) || hasExponent(prev) {
		ft, ok := parseTime(t)
		if !ok {
			return fmt.Errorf("event time %s is out of range", t)
		}
		if ft < 0 {
			return fmt.Errorf("event time %s is negative", t)
		}
		if fp := prevTime(prev); ft < fp-TimeSlack {
			return beforePrevious(t, prev)
		}
		return nil
	}
	d := t
	if d[0] == '-' {
		if !isZero(d) {
			return fmt.Errorf("event time %s is negative", t)
		}
		d = d[1:]
	}
	p := prev
	if len(p) == 0 {
		p = []byte{'0'}
	} else if p[0] == '-' { // "-0", "-0.0"
		p = p[1:]
	}
	if compareDecimal(d, p) >= 0 {
		return nil
	}
	// Smaller as decimals; as float64 values the two may still be equal.
	if ft, _ := parseTime(t); ft < prevTime(prev)-TimeSlack {
		return beforePrevious(t, prev)
	}
	return nil
}

// TimeSlack is how far, in seconds, an event's time may go back from the
// previous event's before the Checker calls it a problem. asciicast says
// times only grow, but Tailscale's senders read the clock before taking
// their write lock and write from several goroutines (stdout, stderr,
// resizes), so genuine recordings have events microseconds out of order.
// Players show events in file order; such a recording is not malformed.
const TimeSlack = 1.0

func beforePrevious(t, prev []byte) error {
	return fmt.Errorf("event time %s is before the previous event's time %s", t, prev)
}

func prevTime(prev []byte) float64 {
	if len(prev) == 0 {
		return 0
	}
	f, _ := parseTime(prev)
	return f
}

func hasExponent(b []byte) bool {
	for _, c := range b {
		if c|0x20 == 'e' {
			return true
		}
	}
	return false
}

// isZero reports whether a number without exponent is zero.
func isZero(b []byte) bool {
	for _, c := range b {
		if c >= '1' && c <= '9' {
			return false
		}
	}
	return true
}

// compareDecimal compares two non-negative JSON numbers without sign or
// exponent: an integer part without leading zeros, then maybe a fraction.
func compareDecimal(a, b []byte) int {
	ai, bi := bytes.IndexByte(a, '.'), bytes.IndexByte(b, '.')
	if ai < 0 {
		ai = len(a)
	}
	if bi < 0 {
		bi = len(b)
	}
	if ai != bi { // longer integer part, larger number
		if ai < bi {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a[:ai], b[:bi]); c != 0 {
		return c
	}
	af, bf := a[ai:], b[bi:] // "" or "." and digits
	n := min(len(af), len(bf))
	if c := bytes.Compare(af[:n], bf[:n]); c != 0 {
		return c
	}
	// One fraction extends the other: it is larger if it has a non-zero
	// digit in the rest.
	if !isZero(af[n:]) {
		return 1
	}
	if !isZero(bf[n:]) {
		return -1
	}
	return 0
}
