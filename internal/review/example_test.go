package review_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/reel-rec/reel/internal/review"
	"github.com/reel-rec/reel/internal/store"
	"github.com/reel-rec/reel/internal/store/memstore"
)

// A recorder stores a session; a reviewer lists the store with summaries,
// then reads the recording's events.
func Example() {
	ctx := context.Background()
	st := memstore.New(memstore.Options{})
	defer st.Close()
	w, _ := st.Create(ctx, "web1", time.Date(2026, 11, 1, 14, 3, 22, 0, time.UTC))
	w.Write([]byte(`{"version":2,"width":80,"height":24,"sshUser":"alice","localUser":"root","command":"bash -l"}` + "\n" +
		`[0.5,"o","$ "]` + "\n" + `[2.25,"o","uptime\r\n"]` + "\n"))
	w.Close(store.StatusComplete, "")

	l := &review.Lister{Store: st}
	for s, err := range l.List(ctx, review.Filter{User: "alice"}) {
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(s.Key, s.User, s.Command, s.Status, *s.Duration)

		rec, err := review.Open(ctx, st, s.Key)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		events := review.NewEvents(rec)
		for {
			ev, err := events.Next()
			if err == io.EOF {
				break
			}
			fmt.Printf("%v %s %q\n", ev.Time, ev.Code, ev.Data)
		}
		rec.Close()
	}
	// Output:
	// web1/2026-11-01T14-03-22.000000000Z.cast alice→root bash -l complete 2.25
	// 0.5 o "$ "
	// 2.25 o "uptime\r\n"
}
