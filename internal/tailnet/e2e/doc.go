// Package e2e holds reel's tailnet end-to-end tests against real Tailscale
// peers: a real tailscaled (built from tailscale.com v1.102.5) running
// Tailscale SSH with reel as its recorder, and Tailscale's Kubernetes API
// server proxy recording kubectl exec to reel. Everything runs in process or
// as child processes on an in-process tailnet (tailnettest), inside a network
// namespace of the tests' own that has only a loopback interface, so nothing
// can leave the machine.
//
// It has no code outside its tests; it is a package of its own so that no
// other test binary links tsnet, tailscaled's build or Kubernetes.
package e2e
