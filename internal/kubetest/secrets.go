package kubetest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
)

// Secret returns the data of the secret ns/name, and whether it exists.
// (Tailscale's "kube:" state store keeps a node's state in one.)
func (s *Server) Secret(ns, name string) (map[string][]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.secrets[ns+"/"+name]
	return maps.Clone(d), ok
}

// secretRoutes serves secrets get, create and update, and
// SelfSubjectAccessReview: secrets may be read, created and updated (not
// patched); nothing else is allowed.
func (s *Server) secretRoutes(mux *http.ServeMux) {
	type secret struct {
		Kind       string            `json:"kind"`
		APIVersion string            `json:"apiVersion"`
		Metadata   map[string]any    `json:"metadata"`
		Data       map[string][]byte `json:"data"`
	}
	reply := func(w http.ResponseWriter, code int, ns, name string, data map[string][]byte, version int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(secret{Kind: "Secret", APIVersion: "v1",
			Metadata: map[string]any{"name": name, "namespace": ns, "resourceVersion": strconv.Itoa(version)}, Data: data})
	}
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("ns"), r.PathValue("name")
		s.mu.Lock()
		d, ok := s.secrets[ns+"/"+name]
		v := s.secretVersion
		s.mu.Unlock()
		if !ok {
			notFound(w, name)
			return
		}
		reply(w, http.StatusOK, ns, name, d, v)
	})
	put := func(create bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var in secret
			if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&in); err != nil {
				writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
				return
			}
			ns := r.PathValue("ns")
			name, _ := in.Metadata["name"].(string)
			if !create {
				name = r.PathValue("name")
			}
			s.mu.Lock()
			if s.secrets == nil {
				s.secrets = map[string]map[string][]byte{}
			}
			_, exists := s.secrets[ns+"/"+name]
			if create == exists {
				s.mu.Unlock()
				code, reason := http.StatusConflict, "AlreadyExists"
				if !create {
					code, reason = http.StatusNotFound, "NotFound"
				}
				writeStatus(w, code, reason, "secret "+name)
				return
			}
			s.secrets[ns+"/"+name] = in.Data
			s.secretVersion++
			v := s.secretVersion
			s.mu.Unlock()
			code := http.StatusOK
			if create {
				code = http.StatusCreated
			}
			reply(w, code, ns, name, in.Data, v)
		}
	}
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/secrets", put(true))
	mux.HandleFunc("PUT /api/v1/namespaces/{ns}/secrets/{name}", put(false))
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews", func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Spec struct {
				ResourceAttributes struct{ Verb, Resource string } `json:"resourceAttributes"`
			} `json:"spec"`
		}
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review)
		a := review.Spec.ResourceAttributes
		allowed := a.Resource == "secrets" && (a.Verb == "get" || a.Verb == "update" || a.Verb == "create")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
			"status": map[string]any{"allowed": allowed}})
	})
}
