{{- define "modelops.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end }}
{{- end }}

{{- define "modelops.labels" -}}
app.kubernetes.io/name: modelops
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: modelops
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "modelops.selectorLabels" -}}
app.kubernetes.io/name: modelops
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelops.serviceAccountName" -}}
{{- default (include "modelops.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "modelops.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "modelops.subject" -}}
- kind: ServiceAccount
  name: {{ include "modelops.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{- define "modelops.runtimeImage" -}}
{{ .Values.runtimeImage | default (include "modelops.image" .) }}
{{- end }}
