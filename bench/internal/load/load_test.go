package load

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{7}, 7},
		{"odd", []float64{3, 1, 2}, 2},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			if got := Median(in); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("Median reordered its input: %v", in)
				}
			}
		})
	}
	if got := Median([]time.Duration{time.Second, 3 * time.Second}); got != 2*time.Second {
		t.Errorf("Median of durations = %v, want 2s", got)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	thousands := make([]time.Duration, 3000)
	for i := range thousands {
		thousands[i] = time.Duration(i + 1)
	}
	for _, tt := range []struct {
		name string
		got  func() int64
		want int64
	}{
		{"p50 of 1..100", func() int64 { return int64(Percentile(hundred, 0.5)) }, 50},
		{"p99 of 1..100", func() int64 { return int64(Percentile(hundred, 0.99)) }, 99},
		{"p100 is the largest", func() int64 { return int64(Percentile(hundred, 1)) }, 100},
		{"a tiny p is the smallest", func() int64 { return int64(Percentile(hundred, 0.001)) }, 1},
		{"p84 of 1..10 rounds up the rank", func() int64 { return int64(Percentile([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.84)) }, 9},
		{"p99 of 1..3000 despite 0.99*3000 in floating point", func() int64 { return int64(Percentile(thousands, 0.99)) }, 2970},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
