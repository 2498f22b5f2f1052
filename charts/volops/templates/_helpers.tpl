{{/* Chart name, capped for label values. */}}
{{- define "volops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix; leaves room for the longest suffix ("-webhook-metrics"). */}}
{{- define "volops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "volops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "volops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "volops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "volops.labels" -}}
helm.sh/chart: {{ include "volops.chart" . }}
{{ include "volops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: volops
{{- end -}}

{{/* Component labels: call with (dict "root" $ "component" "webhook"). */}}
{{- define "volops.componentLabels" -}}
{{ include "volops.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "volops.componentSelectorLabels" -}}
{{ include "volops.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "volops.webhook.name" -}}{{ include "volops.fullname" . }}-webhook{{- end -}}
{{- define "volops.controller.name" -}}{{ include "volops.fullname" . }}-controller{{- end -}}
{{- define "volops.webhook.serviceName" -}}{{ include "volops.webhook.name" . }}{{- end -}}

{{/* The controller's user as the API server names it: its ServiceAccount. */}}
{{- define "volops.controller.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "volops.controller.name" .) -}}
{{- end -}}

{{/* Secret with tls.crt / tls.key (and ca.crt) that the webhook pods mount at /tls. */}}
{{- define "volops.webhook.tlsSecretName" -}}
{{- if and (not .Values.certManager.enabled) .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- include "volops.webhook.name" . }}-tls
{{- end -}}
{{- end -}}

{{/* "true" when the webhook requires client certificates (webhook.clientCA names a source). */}}
{{- define "volops.webhook.clientCA" -}}
{{- with .Values.webhook.clientCA -}}
{{- if and .configMap .secret -}}
{{- fail "webhook.clientCA: set configMap or secret, not both" -}}
{{- end -}}
{{- if or .configMap .secret -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "volops.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* DNS names the API server may use for the webhook Service. */}}
{{- define "volops.webhook.dnsNames" -}}
{{- $svc := include "volops.webhook.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson -}}
{{- end -}}

{{/*
Generated certificates (certManager off, no existingSecret), as a dict with caCrt, tlsCrt,
tlsKey (PEM). Reuses the Secret of the installed release when lookup finds it, so upgrades
keep the CA the webhook configurations trust. Computed once per render and cached in .Values
so that the Secret and both webhook configurations agree.
*/}}
{{- define "volops.webhook.generatedCerts" -}}
{{- if not (hasKey .Values "__volopsGeneratedCerts") -}}
{{- $secretName := include "volops.webhook.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- $certs := dict -}}
{{- if and $existing $existing.data (hasKey $existing.data "ca.crt") (hasKey $existing.data "tls.crt") (hasKey $existing.data "tls.key") -}}
{{- $certs = dict "caCrt" (index $existing.data "ca.crt" | b64dec) "tlsCrt" (index $existing.data "tls.crt" | b64dec) "tlsKey" (index $existing.data "tls.key" | b64dec) -}}
{{- else -}}
{{- $days := int .Values.tls.validityDays -}}
{{- $ca := genCA (printf "%s-ca" (include "volops.fullname" .)) $days -}}
{{- $svc := include "volops.webhook.serviceName" . -}}
{{- $dnsNames := include "volops.webhook.dnsNames" . | fromJsonArray -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil $dnsNames $days $ca -}}
{{- $certs = dict "caCrt" $ca.Cert "tlsCrt" $cert.Cert "tlsKey" $cert.Key -}}
{{- end -}}
{{- $_ := set .Values "__volopsGeneratedCerts" $certs -}}
{{- end -}}
{{- index .Values "__volopsGeneratedCerts" | toJson -}}
{{- end -}}

{{/* caBundle for the webhook configurations; empty under cert-manager (the CA injector fills it). */}}
{{- define "volops.webhook.caBundle" -}}
{{- if .Values.certManager.enabled -}}
{{- else if .Values.tls.existingSecret -}}
{{- required "tls.caBundle (base64 PEM of the CA that signed tls.existingSecret) is required with tls.existingSecret" .Values.tls.caBundle -}}
{{- else -}}
{{- $certs := include "volops.webhook.generatedCerts" . | fromJson -}}
{{- $certs.caCrt | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Annotations shared by both webhook configurations. */}}
{{- define "volops.webhook.configAnnotations" -}}
{{- if .Values.certManager.enabled -}}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "volops.webhook.name" .) }}
{{- end }}
{{- end -}}

{{/* clientConfig for a path: (dict "root" $ "path" "/mutate"). */}}
{{- define "volops.webhook.clientConfig" -}}
clientConfig:
  {{- with .root.Values.webhook.externalURL }}
  url: {{ printf "%s%s" (trimSuffix "/" .) $.path | quote }}
  {{- else }}
  service:
    name: {{ include "volops.webhook.serviceName" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: {{ .root.Values.webhook.service.port }}
  {{- end }}
  {{- with include "volops.webhook.caBundle" .root }}
  caBundle: {{ . }}
  {{- end }}
{{- end -}}

{{/*
namespaceSelector: never the release namespace, kube-system or excludeNamespaces, never a
namespace labelled volops.dev/webhook=disabled, plus the user's own selector.
*/}}
{{- define "volops.webhook.namespaceSelector" -}}
{{- $excluded := concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq -}}
{{- $exprs := list (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" $excluded) (dict "key" "volops.dev/webhook" "operator" "NotIn" "values" (list "disabled")) -}}
{{- $exprs = concat $exprs (.Values.webhook.namespaceSelector.matchExpressions | default list) -}}
namespaceSelector:
  {{- with .Values.webhook.namespaceSelector.matchLabels }}
  matchLabels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  matchExpressions:
    {{- toYaml $exprs | nindent 4 }}
{{- end -}}

{{/*
matchConditions (GA in Kubernetes 1.30, beta and on by default since 1.28): the controller's own
writes never go to the webhook, so it never needs it to go on or roll back; plus the hook's own
conditions. Call with (dict "root" $ "extra" (list (dict "name" .. "expression" ..))).
*/}}
{{- define "volops.webhook.matchConditions" -}}
matchConditions:
  - name: exclude-volops-controller
    expression: {{ printf "request.userInfo.username != '%s'" (include "volops.controller.username" .root) | quote }}
  {{- range .extra }}
  - name: {{ .name }}
    expression: {{ .expression | quote }}
  {{- end }}
{{- end -}}

{{/* Settings common to every webhook of both configurations. */}}
{{- define "volops.webhook.common" -}}
failurePolicy: {{ .Values.webhook.failurePolicy }}
sideEffects: None
admissionReviewVersions: ["v1"]
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
{{ include "volops.webhook.namespaceSelector" . }}
{{- end -}}

{{/* Default spread of a component over nodes: (dict "root" $ "component" "webhook" "values" .Values.webhook). */}}
{{- define "volops.scheduling" -}}
{{- if .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml .values.topologySpreadConstraints | nindent 2 }}
{{- else }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "volops.componentSelectorLabels" . | nindent 8 }}
{{- end }}
{{- if .values.affinity }}
affinity:
  {{- toYaml .values.affinity | nindent 2 }}
{{- else }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "volops.componentSelectorLabels" . | nindent 14 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* POD_NAME / POD_NAMESPACE from the downward API, then the user's extraEnv. */}}
{{- define "volops.env" -}}
env:
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  {{- with .extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Probes on the plain-HTTP probe port (metrics have a port of their own). */}}
{{- define "volops.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: probes
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: probes
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 3
startupProbe:
  httpGet:
    path: /healthz
    port: probes
  periodSeconds: 2
  failureThreshold: 30
{{- end -}}

{{/* PDB body: (dict "root" $ "component" "webhook" "values" .Values.webhook). */}}
{{- define "volops.pdb" -}}
{{- $pdb := .values.podDisruptionBudget -}}
{{- if and $pdb.enabled (gt (int .values.replicas) 1) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "volops.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "volops.componentLabels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $pdb.maxUnavailable) }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "volops.componentSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
