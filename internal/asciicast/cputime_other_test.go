//go:build !unix

package asciicast

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
