package main

import "path/filepath"

// asTsrecorder makes reel a drop-in for Tailscale's tsrecorder image: the
// Tailscale Kubernetes operator starts "/tsrecorder" with no arguments and
// configures it through the environment (TS_AUTHKEY_FILE, TS_STATE,
// TSRECORDER_HOSTNAME, TSRECORDER_LOGIN_SERVER, TSRECORDER_DST,
// TSRECORDER_BUCKET and the S3 secret's AWS_* variables), all of which
// "reel serve" reads. Called by that name, reel runs "serve --tailnet"
// with whatever arguments follow.
func asTsrecorder(argv0 string, args []string) []string {
	if filepath.Base(argv0) != "tsrecorder" {
		return args
	}
	return append([]string{"serve", "--tailnet"}, args...)
}
