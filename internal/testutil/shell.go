package testutil

import (
	"fmt"
	"strings"
)

// ExpectShellSize waits until a POSIX shell reading the terminal (directly
// or over ssh) sees a terminal of rows × cols: a Resize has gone all the
// way through. It types a loop that polls "stty size" and then prints
// "size:ROWS COLS", which the echo of the typed line cannot show.
func (tm *Terminal) ExpectShellSize(rows, cols int) {
	tm.t.Helper()
	want := fmt.Sprintf("size:%d %d", rows, cols)
	seen := strings.Count(tm.Output(), want)
	tm.Send(fmt.Sprintf(`while [ "$(stty size)" != "%d %d" ]; do sleep 0.01; done; echo "size:$(stty size)"`+"\r", rows, cols))
	tm.ExpectCount(want, seen+1)
}
