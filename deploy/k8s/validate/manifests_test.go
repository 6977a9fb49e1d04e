// The Kubernetes manifests beside this folder, decoded strictly into the Kubernetes API's own Go types
// (k8s.io/api) and KEDA's (ScaledObject): an unknown or misspelt field, a wrong type or a kind we do
// not know fails, as `kubectl apply --validate=strict` would. Then what a deployment relies on: each
// Deployment's selector matches its pods, every container has probes and resources, every
// PodDisruptionBudget and the ScaledObject point at a Deployment, and a stopping worker's grace fits
// in its pod's termination period. No cluster runs here; `go test` in this folder (CI does).
package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	configMaps  []*corev1.ConfigMap
	scaled      []*kedav1alpha1.ScaledObject
}

// strict decodes JSON into out, refusing fields the type does not have.
func strict(doc []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// decode reads one document strictly into a new T.
func decode[T any](doc []byte) (*T, error) {
	out := new(T)
	return out, strict(doc, out)
}

// appendDecoded decodes one document strictly and appends it to list.
func appendDecoded[T any](list []*T, doc []byte) ([]*T, error) {
	out, err := decode[T](doc)
	return append(list, out), err
}

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{deployments: map[string]*appsv1.Deployment{}}
	var kust struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Labels     []map[string]any `json:"labels"`
		Resources  []string         `json:"resources"`
	}
	raw, err := os.ReadFile("../kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob("../*.yaml")
	listed := map[string]bool{"../kustomization.yaml": true}
	for _, r := range kust.Resources {
		listed["../"+r] = true
	}
	for _, f := range files {
		if !listed[f] {
			t.Errorf("%s is not among kustomization.yaml's resources", f)
		}
	}
	for _, r := range kust.Resources {
		raw, err := os.ReadFile("../" + r)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", r, err)
		}
		for i, part := range strings.Split(string(raw), "\n---\n") {
			doc, err := yaml.YAMLToJSON([]byte(part))
			if err != nil {
				t.Fatalf("%s document %d: %v", r, i+1, err)
			}
			var head metav1.TypeMeta
			if err := json.Unmarshal(doc, &head); err != nil || head.Kind == "" {
				continue // comments only
			}
			where := fmt.Sprintf("%s document %d (%s)", r, i+1, head.Kind)
			var decodeErr error
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				var d *appsv1.Deployment
				d, decodeErr = decode[appsv1.Deployment](doc)
				m.deployments[d.Name] = d
			case "v1 Service":
				m.services, decodeErr = appendDecoded(m.services, doc)
			case "v1 ConfigMap":
				m.configMaps, decodeErr = appendDecoded(m.configMaps, doc)
			case "policy/v1 PodDisruptionBudget":
				m.pdbs, decodeErr = appendDecoded(m.pdbs, doc)
			case "keda.sh/v1alpha1 ScaledObject":
				m.scaled, decodeErr = appendDecoded(m.scaled, doc)
			default:
				t.Errorf("%s: a kind this check does not know", where)
			}
			if decodeErr != nil {
				t.Errorf("%s: %v", where, decodeErr)
			}
		}
	}
	return m
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	for _, name := range []string{"rbm-guard-worker", "rbm-guard-webhook", "rbm-guard-api"} {
		if m.deployments[name] == nil {
			t.Errorf("no Deployment %s", name)
		}
	}
	if len(m.pdbs) != 3 || len(m.scaled) != 1 || len(m.configMaps) != 1 || len(m.services) != 2 {
		t.Errorf("got %d PDBs, %d ScaledObjects, %d ConfigMaps, %d Services; want 3, 1, 1, 2", len(m.pdbs), len(m.scaled), len(m.configMaps), len(m.services))
	}
}

func TestEveryPodIsProbedBoundedAndRunsOnePart(t *testing.T) {
	m := load(t)
	for name, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: the selector does not match its pods' labels", name)
		}
		sc := d.Spec.Template.Spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pods must run as non-root", name)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s/%s: needs readiness and liveness probes", name, c.Name)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: needs CPU and memory requests and a memory limit", name, c.Name)
			}
			part := strings.TrimPrefix(name, "rbm-guard-")
			if strings.Join(c.Command, " ") != "node service/main.ts --only "+part {
				t.Errorf("%s/%s: runs %q, not `node service/main.ts --only %s`", name, c.Name, c.Command, part)
			}
		}
	}
}

func TestAStoppingWorkerFinishesItsActivitiesBeforeTheKill(t *testing.T) {
	d := load(t).deployments["rbm-guard-worker"]
	if d == nil {
		t.Fatal("no worker Deployment")
	}
	grace := int64(0)
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "WORKER_SHUTDOWN_GRACE_MS" {
			ms, _ := strconv.ParseInt(e.Value, 10, 64)
			grace = ms / 1000
		}
	}
	period := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == 0 || period == nil || *period < grace+10 {
		t.Errorf("WORKER_SHUTDOWN_GRACE_MS %d s must fit, with 10 s to spare, in terminationGracePeriodSeconds %v", grace, period)
	}
}

func TestBudgetsAndTheScalerPointAtDeployments(t *testing.T) {
	m := load(t)
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		d := m.deployments[p.Name]
		if err != nil || d == nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget %s selects no Deployment of that name", p.Name)
		}
	}
	for _, s := range m.scaled {
		if m.deployments[s.Spec.ScaleTargetRef.Name] == nil {
			t.Errorf("ScaledObject %s scales %q, which is not a Deployment here", s.Name, s.Spec.ScaleTargetRef.Name)
		}
		if len(s.Spec.Triggers) != 1 || s.Spec.Triggers[0].Type != "temporal" || s.Spec.Triggers[0].Metadata["taskQueue"] != "rbm-guard" {
			t.Errorf("ScaledObject %s: want one temporal trigger on task queue rbm-guard, got %+v", s.Name, s.Spec.Triggers)
		}
	}
	for _, svc := range m.services {
		d := m.deployments[svc.Name]
		if d == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Service %s selects no Deployment of that name", svc.Name)
		}
	}
}
