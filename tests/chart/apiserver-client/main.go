// Command tkeha-apiserver-client calls an admission webhook the way kube-apiserver does, from a
// rendered webhook configuration, so the chart's certificates meet Go's crypto/tls and net/http as
// the API server's webhook client would use them:
//
//   - the configuration's caBundle is the only root (no system roots);
//   - the verified name is SERVICE.NAMESPACE.svc (Go checks SANs only, never the Common Name,
//     and requires the serverAuth extended key usage when the certificate names any);
//   - HTTP/2 negotiated by ALPN (the call fails if the server does not speak h2);
//   - POST https://SERVICE.NAMESPACE.svc:PORT/PATH?timeout=Ns with N the configuration's
//     timeoutSeconds (10 when unset), rounded up as the API server does;
//   - an admission.k8s.io/v1 AdmissionReview with a fresh uid; the answer is checked as the API
//     server's VerifyAdmissionResponse does (apiVersion, kind, uid, patchType), and a mutating
//     webhook's JSON patch is decoded from base64 ([]byte in Go) and applied to the object.
//
// The one substitution: the Service's address comes from -dial instead of the cluster's Service
// resolution. The result is printed as JSON on stdout; any failure goes to stderr with exit 1.
// Standard library only (Debian's golang-go builds it offline).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// maxResponse bounds what is read of the webhook's answer (the API server reads no more either).
const maxResponse = 3 << 20

type serviceReference struct {
	Namespace string  `json:"namespace"`
	Name      string  `json:"name"`
	Path      *string `json:"path"`
	Port      *int32  `json:"port"`
}

type clientConfig struct {
	URL      *string           `json:"url"`
	Service  *serviceReference `json:"service"`
	CABundle []byte            `json:"caBundle"`
}

type webhook struct {
	Name                    string       `json:"name"`
	ClientConfig            clientConfig `json:"clientConfig"`
	TimeoutSeconds          *int32       `json:"timeoutSeconds"`
	AdmissionReviewVersions []string     `json:"admissionReviewVersions"`
}

type configuration struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Webhooks   []webhook `json:"webhooks"`
}

type groupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

type groupVersionResource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

type userInfo struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
}

type admissionRequest struct {
	UID             string               `json:"uid"`
	Kind            groupVersionKind     `json:"kind"`
	Resource        groupVersionResource `json:"resource"`
	RequestKind     groupVersionKind     `json:"requestKind"`
	RequestResource groupVersionResource `json:"requestResource"`
	Name            string               `json:"name,omitempty"`
	Operation       string               `json:"operation"`
	UserInfo        userInfo             `json:"userInfo"`
	Object          json.RawMessage      `json:"object,omitempty"`
	OldObject       json.RawMessage      `json:"oldObject,omitempty"`
	DryRun          bool                 `json:"dryRun"`
	Options         json.RawMessage      `json:"options,omitempty"`
}

type admissionResponse struct {
	UID       string          `json:"uid"`
	Allowed   bool            `json:"allowed"`
	Result    json.RawMessage `json:"status,omitempty"`
	Patch     []byte          `json:"patch,omitempty"`
	PatchType *string         `json:"patchType,omitempty"`
	Warnings  []string        `json:"warnings,omitempty"`
}

type admissionReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Request    *admissionRequest  `json:"request,omitempty"`
	Response   *admissionResponse `json:"response,omitempty"`
}

// summary is what the caller asserts on.
type summary struct {
	URL           string          `json:"url"`
	Proto         string          `json:"proto"`
	ALPN          string          `json:"alpn"`
	TLSVersion    string          `json:"tlsVersion"`
	PeerDNSNames  []string        `json:"peerDNSNames"`
	HTTPStatus    int             `json:"httpStatus"`
	RequestUID    string          `json:"requestUID"`
	UID           string          `json:"uid"`
	Allowed       bool            `json:"allowed"`
	Status        json.RawMessage `json:"status,omitempty"`
	PatchType     *string         `json:"patchType,omitempty"`
	Patch         json.RawMessage `json:"patch,omitempty"`
	PatchedObject json.RawMessage `json:"patchedObject,omitempty"`
	Warnings      []string        `json:"warnings,omitempty"`
}

func main() {
	configPath := flag.String("config", "", "rendered MutatingWebhookConfiguration or ValidatingWebhookConfiguration (JSON)")
	hookName := flag.String("webhook", "", "webhook name inside the configuration (default: its only webhook)")
	dial := flag.String("dial", "", "HOST:PORT that stands in for the Service's address")
	objectPath := flag.String("object", "", "the object under review (JSON)")
	operation := flag.String("operation", "CREATE", "CREATE or UPDATE")
	flag.Parse()
	if *configPath == "" || *dial == "" || *objectPath == "" {
		fail(errors.New("-config, -dial and -object are required (see -h)"))
	}
	out, err := call(*configPath, *hookName, *dial, *objectPath, *operation)
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "tkeha-apiserver-client: %v\n", err)
	os.Exit(1)
}

func readJSON(path string, into interface{}) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

func pick(cfg *configuration, name string) (*webhook, error) {
	for i := range cfg.Webhooks {
		if name == "" && len(cfg.Webhooks) == 1 || cfg.Webhooks[i].Name == name {
			return &cfg.Webhooks[i], nil
		}
	}
	return nil, fmt.Errorf("no webhook %q among %d in the configuration", name, len(cfg.Webhooks))
}

func call(configPath, hookName, dial, objectPath, operation string) (*summary, error) {
	var cfg configuration
	if _, err := readJSON(configPath, &cfg); err != nil {
		return nil, err
	}
	mutating := cfg.Kind == "MutatingWebhookConfiguration"
	if !mutating && cfg.Kind != "ValidatingWebhookConfiguration" {
		return nil, fmt.Errorf("%s: kind %q is not a webhook configuration", configPath, cfg.Kind)
	}
	hook, err := pick(&cfg, hookName)
	if err != nil {
		return nil, err
	}
	if !contains(hook.AdmissionReviewVersions, "v1") {
		return nil, fmt.Errorf("webhook %s: admissionReviewVersions %v lacks v1", hook.Name, hook.AdmissionReviewVersions)
	}
	svc := hook.ClientConfig.Service
	if svc == nil || hook.ClientConfig.URL != nil {
		return nil, fmt.Errorf("webhook %s: clientConfig must name a service (and no url)", hook.Name)
	}
	if len(hook.ClientConfig.CABundle) == 0 {
		return nil, fmt.Errorf("webhook %s: clientConfig.caBundle is empty (the API server would fall back to system roots)", hook.Name)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(hook.ClientConfig.CABundle) {
		return nil, fmt.Errorf("webhook %s: caBundle holds no PEM certificate", hook.Name)
	}
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	path := "/"
	if svc.Path != nil {
		path = *svc.Path
	}
	timeout := 10 * time.Second
	if hook.TimeoutSeconds != nil {
		timeout = time.Duration(*hook.TimeoutSeconds) * time.Second
	}
	serverName := svc.Name + "." + svc.Namespace + ".svc"
	url := fmt.Sprintf("https://%s:%d%s?timeout=%s", serverName, port, path, timeout)

	var object map[string]interface{}
	rawObject, err := readJSON(objectPath, &object)
	if err != nil {
		return nil, err
	}
	review, err := newReview(object, rawObject, operation)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}

	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12},
		// A custom TLS config turns net/http's automatic HTTP/2 off; client-go turns it back on.
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, dial)
		},
		TLSHandshakeTimeout: timeout,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: timeout}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	req.Header.Set("User-Agent", "kube-apiserver-admission")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed calling webhook %q: %w", hook.Name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %q: %w", hook.Name, err)
	}
	if len(raw) > maxResponse {
		return nil, fmt.Errorf("answer of %q exceeds %d bytes", hook.Name, maxResponse)
	}
	out := &summary{URL: url, Proto: resp.Proto, HTTPStatus: resp.StatusCode, RequestUID: review.Request.UID}
	if resp.TLS != nil {
		out.ALPN = resp.TLS.NegotiatedProtocol
		out.TLSVersion = tlsVersion(resp.TLS.Version)
		if len(resp.TLS.PeerCertificates) > 0 {
			out.PeerDNSNames = resp.TLS.PeerCertificates[0].DNSNames
		}
	}
	if resp.ProtoMajor != 2 || out.ALPN != "h2" {
		return out, fmt.Errorf("webhook %q answered over %s (ALPN %q); the API server's client negotiates HTTP/2", hook.Name, resp.Proto, out.ALPN)
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("webhook %q answered HTTP %d: %s", hook.Name, resp.StatusCode, truncate(raw))
	}
	var answer admissionReview
	if err := json.Unmarshal(raw, &answer); err != nil {
		return out, fmt.Errorf("webhook %q: answer is not an AdmissionReview: %w", hook.Name, err)
	}
	if err := verify(review, &answer, mutating); err != nil {
		return out, fmt.Errorf("webhook %q: %w", hook.Name, err)
	}
	r := answer.Response
	out.UID, out.Allowed, out.Status, out.PatchType, out.Warnings = r.UID, r.Allowed, r.Result, r.PatchType, r.Warnings
	if len(r.Patch) > 0 {
		out.Patch = r.Patch
		patched, err := applyPatch(object, r.Patch)
		if err != nil {
			return out, fmt.Errorf("webhook %q: the API server could not apply its patch: %w", hook.Name, err)
		}
		if out.PatchedObject, err = json.Marshal(patched); err != nil {
			return out, err
		}
	}
	return out, nil
}

// verify mirrors the API server's VerifyAdmissionResponse for admission.k8s.io/v1.
func verify(sent *admissionReview, got *admissionReview, mutating bool) error {
	if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" {
		return fmt.Errorf("expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got %s, Kind=%s", got.APIVersion, got.Kind)
	}
	if got.Response == nil {
		return errors.New("webhook response was absent")
	}
	if got.Response.UID != sent.Request.UID {
		return fmt.Errorf("expected response.uid=%q, got %q", sent.Request.UID, got.Response.UID)
	}
	if mutating && len(got.Response.Patch) > 0 {
		if got.Response.PatchType == nil {
			return errors.New("webhook returned response.patch but not response.patchType")
		}
		if *got.Response.PatchType != "JSONPatch" {
			return fmt.Errorf("webhook returned invalid response.patchType of %q", *got.Response.PatchType)
		}
	}
	return nil
}

func newReview(object map[string]interface{}, raw []byte, operation string) (*admissionReview, error) {
	if operation != "CREATE" && operation != "UPDATE" {
		return nil, fmt.Errorf("-operation %q: CREATE or UPDATE", operation)
	}
	apiVersion, _ := object["apiVersion"].(string)
	kind, _ := object["kind"].(string)
	group, version := "", apiVersion
	if i := strings.Index(apiVersion, "/"); i >= 0 {
		group, version = apiVersion[:i], apiVersion[i+1:]
	}
	if kind == "" || version == "" {
		return nil, errors.New("the object needs apiVersion and kind")
	}
	name := ""
	if meta, ok := object["metadata"].(map[string]interface{}); ok {
		name, _ = meta["name"].(string)
	}
	uid, err := newUID()
	if err != nil {
		return nil, err
	}
	gvk := groupVersionKind{Group: group, Version: version, Kind: kind}
	gvr := groupVersionResource{Group: group, Version: version, Resource: strings.ToLower(kind) + "s"}
	options := `{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-create"}`
	var old json.RawMessage
	if operation == "UPDATE" {
		options = `{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-edit"}`
		old = raw
	}
	return &admissionReview{
		APIVersion: "admission.k8s.io/v1",
		Kind:       "AdmissionReview",
		Request: &admissionRequest{
			UID: uid, Kind: gvk, Resource: gvr, RequestKind: gvk, RequestResource: gvr,
			Name: name, Operation: operation,
			UserInfo:  userInfo{Username: "kubernetes-admin", Groups: []string{"kubeadm:cluster-admins", "system:authenticated"}},
			Object:    raw,
			OldObject: old,
			Options:   json.RawMessage(options),
		},
	}, nil
}

// newUID is a random RFC 4122 version 4 UUID, as the API server gives every admission request.
func newUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(b []byte) string {
	s := string(b)
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
