package kubeproxy

import (
	"encoding/json"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// forbiddenError refuses a request with a 403 Status.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string { return e.msg }

// statusJSON is a Kubernetes Status object, the body kubectl prints as
// "Error from server (Reason): message".
func statusJSON(code int, reason metav1.StatusReason, msg string) []byte {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	b, _ := json.Marshal(st)
	return b
}

// writeStatus answers with a Status.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(statusJSON(code, reason, msg))
	w.Write([]byte("\n"))
}
