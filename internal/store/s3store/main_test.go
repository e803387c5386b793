package s3store_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that closed stores leave no goroutines behind (idle
// HTTP keep-alive connections of the S3 client aside).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
