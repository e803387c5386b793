package kubeproxy_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/reel-rec/reel/internal/policy"
	"github.com/reel-rec/reel/internal/testutil"
)

// TestDeployManifests renders each kustomize base in deploy/ with the
// real kubectl and decodes every object strictly against the Kubernetes
// API types (an unknown or misspelt field fails), then checks what the
// manifests promise: non-root, read-only, no privilege; RBAC that only
// impersonates and reviews tokens; a policy that parses and names the
// recorder Service's address.
func TestDeployManifests(t *testing.T) {
	kubectl := testutil.NeedTool(t, "kubectl")
	decode := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	objects := map[string][]runtime.Object{}
	for _, base := range []string{"recorder", "recorder-s3", "kube-proxy"} {
		out, err := exec.Command(kubectl, "kustomize", filepath.Join("..", "..", "deploy", base)).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", base, err)
		}
		for i, doc := range bytes.Split(out, []byte("\n---\n")) {
			obj, gvk, err := decode.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s: object %d: %v\n%s", base, i, err, doc)
				continue
			}
			if gvk.Kind == "" {
				t.Errorf("%s: object %d has no kind", base, i)
			}
			objects[base] = append(objects[base], obj)
		}
	}

	var recorderIP string
	for base, objs := range objects {
		for _, obj := range objs {
			switch o := obj.(type) {
			case *appsv1.StatefulSet:
				checkPod(t, base+"/"+o.Name, o.Spec.Template.Spec)
			case *appsv1.Deployment:
				checkPod(t, base+"/"+o.Name, o.Spec.Template.Spec)
				if o.Spec.Template.Spec.ServiceAccountName != "reel-kube-proxy" {
					t.Errorf("%s: service account %q", o.Name, o.Spec.Template.Spec.ServiceAccountName)
				}
			case *rbacv1.ClusterRole:
				for _, r := range o.Rules {
					for _, v := range r.Verbs {
						ok := v == "impersonate" || v == "create" && slices.Equal(r.Resources, []string{"tokenreviews"})
						if !ok {
							t.Errorf("ClusterRole %s grants %q on %v: more than impersonation needs", o.Name, v, r.Resources)
						}
					}
				}
			case *corev1.Service:
				if o.Name == "reel-recorder" {
					recorderIP = fmt.Sprintf("%s:%d", o.Spec.ClusterIP, o.Spec.Ports[0].Port)
				}
			}
		}
	}
	found := false
	for _, obj := range objects["kube-proxy"] {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		p, err := policy.Parse("policy.hujson", []byte(cm.Data["policy.hujson"]))
		if err != nil {
			t.Fatalf("the deployed policy: %v", err)
		}
		found = true
		if !slices.Contains(p.Recorders["tag:recorder"], netip.MustParseAddrPort(recorderIP)) {
			t.Errorf("the policy's recorders %v do not name the recorder Service %s", p.Recorders, recorderIP)
		}
	}
	if !found {
		t.Error("no policy ConfigMap in deploy/kube-proxy")
	}
}

func checkPod(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod does not require a non-root user", name)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s: want a read-only root, no privilege escalation, all capabilities dropped", name, c.Name)
		}
		if c.Image != "reel:latest" || !strings.HasPrefix(strings.Join(c.Args, " "), "serve") && !strings.HasPrefix(strings.Join(c.Args, " "), "kube-proxy") {
			t.Errorf("%s: container %s runs %s %v", name, c.Name, c.Image, c.Args)
		}
	}
}
