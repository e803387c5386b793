package s3store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/reel-rec/reel/internal/store"
)

// TestDeleteFileRacesUpload: a small file deleted right after it was put,
// while its upload may be in flight, is gone at once from the listing and
// stays gone once every upload has landed (an upload in flight used to
// put the object back: a released legal hold came back).
func TestDeleteFileRacesUpload(t *testing.T) {
	e := newEnv(t, "versitygw")
	cfg := e.config(t)
	s := e.open(t, cfg)
	defer s.Close()
	const name = ".evidence/holds/x"
	for i := range 40 {
		if err := s.PutFile(t.Context(), name, fmt.Appendf(nil, "hold %d", i)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteFile(t.Context(), name); err != nil {
			t.Fatalf("round %d: DeleteFile: %v", i, err)
		}
		for got, err := range s.ListFiles(t.Context(), ".evidence/") {
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("round %d: ListFiles right after DeleteFile lists %q", i, got)
		}
		flush(t, s)
		if b, err := e.readObject(t.Context(), cfg, name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("round %d: once uploads landed, the deleted object reads %q, %v; want ErrNotFound", i, b, err)
		}
	}
}
