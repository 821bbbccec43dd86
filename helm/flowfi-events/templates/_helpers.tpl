{{/* The chart's name, or nameOverride. */}}
{{- define "flowfi-events.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: fullnameOverride, or the release name with the chart's unless it holds it already. */}}
{{- define "flowfi-events.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "flowfi-events.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flowfi-events.labels" -}}
helm.sh/chart: {{ include "flowfi-events.chart" . }}
{{ include "flowfi-events.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "flowfi-events.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowfi-events.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flowfi-events.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flowfi-events.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The most pods there may be: what needs Redis and a PodDisruptionBudget. */}}
{{- define "flowfi-events.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.maxReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/* The fewest pods there will be when nothing is disrupted. */}}
{{- define "flowfi-events.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "flowfi-events.redisConfigured" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{/*
The drain, from the one value drainSeconds: DRAIN_DELAY_MS (a quarter, at most 5 s), DRAIN_WINDOW_MS
(the rest), SHUTDOWN_TIMEOUT_MS (5 s more) and terminationGracePeriodSeconds (10 s more than the drain).
*/}}
{{- define "flowfi-events.drainDelayMs" -}}
{{- min 5000 (mul (int .Values.drainSeconds) 250) }}
{{- end }}
{{- define "flowfi-events.drainWindowMs" -}}
{{- sub (mul (int .Values.drainSeconds) 1000) (include "flowfi-events.drainDelayMs" . | int) }}
{{- end }}
{{- define "flowfi-events.shutdownTimeoutMs" -}}
{{- add (mul (int .Values.drainSeconds) 1000) 5000 }}
{{- end }}
{{- define "flowfi-events.terminationGracePeriodSeconds" -}}
{{- add (int .Values.drainSeconds) 10 }}
{{- end }}

{{/* TRUST_PROXY: config.trustProxy, or one hop (the ingress controller) when the ingress is on. */}}
{{- define "flowfi-events.trustProxy" -}}
{{- if .Values.config.trustProxy }}{{ .Values.config.trustProxy }}{{ else if .Values.ingress.enabled }}1{{ end }}
{{- end }}

{{/* Whether the chart's own Secret has anything to hold. */}}
{{- define "flowfi-events.ownSecret" -}}
{{- $s := .Values.secrets }}
{{- if or $s.jwtSecret $s.jwtPublicKey $s.publishToken .Values.redis.url }}true{{ end }}
{{- end }}

{{/* Series of this release in Prometheus: the ServiceMonitor's job is the Service's name. */}}
{{- define "flowfi-events.seriesSelector" -}}
namespace="{{ .Release.Namespace }}", job="{{ include "flowfi-events.fullname" . }}"
{{- end }}

{{/* Combinations of values that cannot work, refused while rendering with the reason. */}}
{{- define "flowfi-events.validate" -}}
{{- if and (gt (include "flowfi-events.maxReplicas" . | int) 1) (not (include "flowfi-events.redisConfigured" .)) }}
{{- fail "more than one pod (replicaCount, or autoscaling.maxReplicas) needs Redis: set redis.url or redis.existingSecret. Without it each pod keeps its own event history and fan-out: an event published to one pod reaches only that pod's streams, and a client resuming on another pod misses events" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "set redis.url or redis.existingSecret, not both" }}
{{- end }}
{{- if and .Values.existingSecret (or .Values.secrets.jwtSecret .Values.secrets.jwtPublicKey .Values.secrets.publishToken) }}
{{- fail "set existingSecret or secrets.*, not both: with existingSecret the chart keeps no secret of its own but redis.url" }}
{{- end }}
{{- if and .Values.secrets.jwtSecret .Values.secrets.jwtPublicKey }}
{{- fail "set secrets.jwtSecret (HS256) or secrets.jwtPublicKey (RS256, ES256), not both" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetConnectionsPerPod) }}
{{- fail "autoscaling needs a target: autoscaling.targetCPUUtilizationPercentage or autoscaling.targetConnectionsPerPod" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas is above autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
