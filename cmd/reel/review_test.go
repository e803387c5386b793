package main

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"zero", formatDuration(0), "0.0s"},
		{"seconds", formatDuration(4.25), "4.2s"},
		{"minutes", formatDuration(187), "3m07s"},
		{"hours", formatDuration(3723.4), "1h02m03s"},
		{"bytes", formatSize(512), "512B"},
		{"KiB", formatSize(1536), "1.5KiB"},
		{"MiB", formatSize(12 << 20), "12MiB"},
		{"GiB", formatSize(3<<30 + 1<<29), "3.5GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"24h", now.Add(-24 * time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, berlin), false},
		{"2026-11-01T14:30", time.Date(2026, 11, 1, 14, 30, 0, 0, berlin), false},
		{"2026-11-01 14:30:15", time.Date(2026, 11, 1, 14, 30, 15, 0, berlin), false},
		{"2026-11-01T14:30:00Z", time.Date(2026, 11, 1, 14, 30, 0, 0, time.UTC), false},
		{"2026-11-01T14:30:00+05:00", time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC), false},
		{"-5h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"7.5d", time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWhen(tc.in, now, berlin)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
