package s3store_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reel-rec/reel/internal/store/s3store"
)

func TestParseURL(t *testing.T) {
	type parsed struct {
		Endpoint       string
		Insecure       bool
		Bucket, Prefix string
	}
	tests := []struct {
		name    string
		dst     string
		want    parsed
		wantErr string
	}{
		{name: "aws", dst: "s3://s3.us-east-1.amazonaws.com", want: parsed{Endpoint: "s3.us-east-1.amazonaws.com"}},
		{name: "trailing slash", dst: "s3://s3.amazonaws.com/", want: parsed{Endpoint: "s3.amazonaws.com"}},
		{name: "plain http", dst: "s3+http://127.0.0.1:9000", want: parsed{Endpoint: "127.0.0.1:9000", Insecure: true}},
		{name: "explicit https", dst: "s3+https://minio.example:9000", want: parsed{Endpoint: "minio.example:9000"}},
		{name: "bucket", dst: "s3://r2.example.com/recordings", want: parsed{Endpoint: "r2.example.com", Bucket: "recordings"}},
		{name: "bucket and prefix", dst: "s3+http://[::1]:9000/rec/prod/eu/", want: parsed{Endpoint: "[::1]:9000", Insecure: true, Bucket: "rec", Prefix: "prod/eu"}},
		{name: "no host", dst: "s3:///bucket", wantErr: "want s3://host"},
		{name: "credentials in url", dst: "s3://key:secret@host", wantErr: "want s3://host"},
		{name: "query", dst: "s3://host?region=x", wantErr: "want s3://host"},
		{name: "wrong scheme", dst: "https://host", wantErr: "scheme"},
		{name: "not a url", dst: "s3://ho st", wantErr: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got parsed
			var err error
			got.Endpoint, got.Insecure, got.Bucket, got.Prefix, err = s3store.ParseURL(tt.dst)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL(%q) = %+v, %v; want error containing %q", tt.dst, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.dst, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseURL(%q) (-want +got):\n%s", tt.dst, diff)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://host", "s3+http://127.0.0.1:9000/b/p", "s3://h/b/", "s3:///x", "s3://a@b", "s3+https://[::1]:1/x/y/z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dst string) {
		endpoint, _, bucket, prefix, err := s3store.ParseURL(dst)
		if err != nil {
			return
		}
		if endpoint == "" || strings.Contains(endpoint, "/") || strings.Contains(endpoint, "@") {
			t.Errorf("ParseURL(%q): endpoint %q", dst, endpoint)
		}
		if strings.Contains(bucket, "/") || strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
			t.Errorf("ParseURL(%q): bucket %q prefix %q", dst, bucket, prefix)
		}
	})
}
