package s3test

import (
	"net/http"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			s := Start(t, name)
			get := func() error {
				resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(s.Endpoint() + "/")
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			if err := get(); err != nil {
				t.Fatalf("running server does not answer: %v", err)
			}
			s.Stop()
			if err := get(); err == nil {
				t.Fatal("stopped server answers")
			}
			s.Restart(t)
			if err := get(); err != nil {
				t.Fatalf("restarted server does not answer: %v", err)
			}
		})
	}
}
