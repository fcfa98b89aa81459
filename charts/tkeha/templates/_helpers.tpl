{{/* Names, labels and other snippets shared by the templates. */}}

{{/* The chart name, overridable. */}}
{{- define "tkeha.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The object name prefix: RELEASE-tkeha, or RELEASE alone when it already says tkeha. */}}
{{- define "tkeha.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* helm.sh/chart: name-version with "+" made label-safe. */}}
{{- define "tkeha.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object (helm.sh/docs/chart_best_practices/labels). */}}
{{- define "tkeha.labels" -}}
helm.sh/chart: {{ include "tkeha.chart" . }}
app.kubernetes.io/name: {{ include "tkeha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tkeha
{{- end }}

{{/* The immutable subset used in selectors, for the webhook pods. */}}
{{- define "tkeha.webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tkeha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "tkeha.webhook.labels" -}}
{{ include "tkeha.labels" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "tkeha.webhook.serviceName" -}}
{{ include "tkeha.fullname" . }}-webhook
{{- end }}

{{- define "tkeha.webhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-webhook" (include "tkeha.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding tls.crt, tls.key and ca.crt (different names per source, so switching
     between Helm-generated and cert-manager certificates never reuses the other's Secret). */}}
{{- define "tkeha.webhook.tlsSecretName" -}}
{{- if .Values.certManager.enabled }}
{{- include "tkeha.fullname" . }}-webhook-cert-manager-tls
{{- else }}
{{- include "tkeha.fullname" . }}-webhook-tls
{{- end }}
{{- end }}

{{/* The serving Certificate cainjector reads the CA from. */}}
{{- define "tkeha.webhook.certificateName" -}}
{{ include "tkeha.fullname" . }}-webhook-serving
{{- end }}

{{/* DNS names the serving certificate must cover (how the API server addresses the Service). */}}
{{- define "tkeha.webhook.dnsNames" -}}
{{- $svc := include "tkeha.webhook.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{- define "tkeha.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "tkeha.provisioner.serviceAccountName" -}}
{{- .Values.provisioner.serviceAccount.name }}
{{- end }}

{{- define "tkeha.provisioner.labels" -}}
{{ include "tkeha.labels" . }}
app.kubernetes.io/component: provisioner
{{- end }}

{{/*
The serving certificate, generated once per render: the existing Secret when there is one
(so upgrades keep the CA the webhook configurations trust), otherwise a new CA and a
certificate signed by it. Returns YAML with base64 values: caCert, tlsCert, tlsKey.
Include it ONCE per template file and reuse the result: every call of genCA makes a new CA.
`lookup` returns nothing under `helm template`/--dry-run, so certificates change there.
*/}}
{{- define "tkeha.webhook.genCerts" -}}
{{- $secretName := include "tkeha.webhook.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- if and $existing (index ($existing.data | default dict) "ca.crt") (index ($existing.data | default dict) "tls.crt") (index ($existing.data | default dict) "tls.key") -}}
caCert: {{ index $existing.data "ca.crt" }}
tlsCert: {{ index $existing.data "tls.crt" }}
tlsKey: {{ index $existing.data "tls.key" }}
{{- else -}}
{{- $days := int .Values.generatedCerts.validityDays -}}
{{- $ca := genCA (printf "%s-webhook-ca" (include "tkeha.fullname" .)) $days -}}
{{- $dnsNames := include "tkeha.webhook.dnsNames" . | fromJsonArray -}}
{{- $cert := genSignedCert (index $dnsNames 2) nil $dnsNames $days $ca -}}
caCert: {{ $ca.Cert | b64enc }}
tlsCert: {{ $cert.Cert | b64enc }}
tlsKey: {{ $cert.Key | b64enc }}
{{- end -}}
{{- end }}

{{/* objectSelector and matchConditions shared by both webhooks. */}}
{{- define "tkeha.webhook.selectors" -}}
{{- if .Values.webhook.optOutLabel }}
objectSelector:
  matchExpressions:
    - key: {{ .Values.webhook.optOutLabel }}
      operator: NotIn
      values: ["true"]
{{- end }}
{{- if .Values.webhook.skipUsernames }}
matchConditions:
  - name: skip-listed-users
    expression: {{ printf "!(request.userInfo.username in %s)" (.Values.webhook.skipUsernames | toJson) | quote }}
{{- end }}
{{- end }}

{{/* The rule both webhooks match: Cluster CREATE and UPDATE, never clusters/status. */}}
{{- define "tkeha.webhook.rules" -}}
rules:
  - apiGroups: ["platform.tkestack.io"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["clusters"]
    scope: Cluster
{{- end }}

{{/*
The Cluster `helm test` sends and expects to be rejected: valid against the CRD's schema and for
the mutating webhook, refused only by the validating webhook (the same IP on two masters).
192.0.2.0/24 is TEST-NET-1: nothing is ever contacted (the request is a dry run).
*/}}
{{- define "tkeha.test.invalidCluster" -}}
apiVersion: platform.tkestack.io/v1
kind: Cluster
metadata:
  name: {{ include "tkeha.fullname" . }}-helm-test-rejected
spec:
  type: Baremetal
  version: 1.30.2
  clusterCIDR: 10.244.0.0/16
  machines:
    - {ip: 192.0.2.11, port: 22, username: root, password: MTIzNDU2}
    - {ip: 192.0.2.11, port: 22, username: root, password: MTIzNDU2}
    - {ip: 192.0.2.13, port: 22, username: root, password: MTIzNDU2}
  features:
    ha:
      tke:
        vip: 192.0.2.100
{{- end }}
