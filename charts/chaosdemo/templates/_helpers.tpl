{{- define "chaosdemo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "chaosdemo.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "chaosdemo.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chaosdemo.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* How both containers reach PD and Prometheus when they want TLS or credentials. */}}
{{- define "chaosdemo.credentialsEnv" -}}
{{- if .Values.pd.tlsSecret }}
- {name: CHAOSDEMO_PD_CREDENTIALS_DIR, value: /etc/chaosdemo/pd}
{{- end }}
{{- if .Values.prometheus.credentialsSecrets }}
- {name: CHAOSDEMO_PROMETHEUS_CREDENTIALS_DIR, value: /etc/chaosdemo/prometheus}
{{- end }}
{{- end }}

{{- define "chaosdemo.credentialsMounts" -}}
{{- if .Values.pd.tlsSecret }}
- {name: pd-credentials, mountPath: /etc/chaosdemo/pd, readOnly: true}
{{- end }}
{{- if .Values.prometheus.credentialsSecrets }}
- {name: prometheus-credentials, mountPath: /etc/chaosdemo/prometheus, readOnly: true}
{{- end }}
{{- end }}
