package tailnet

// Registers the "kube:<secret>" state store (Config.State), as tsrecorder
// allows when it runs in a pod. It talks to the API server with the pod's
// service account; it does not pull in client-go.
import _ "tailscale.com/ipn/store/kubestore"
