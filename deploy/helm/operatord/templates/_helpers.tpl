{{/* Names: <release>-operatord unless the release name already contains the chart name. */}}
{{- define "operatord.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "operatord.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "operatord.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "operatord.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "operatord.controllerServiceAccount" -}}
{{- .Values.serviceAccount.controller.name | default (printf "%s-controller" (include "operatord.fullname" .)) -}}
{{- end -}}

{{- define "operatord.agentServiceAccount" -}}
{{- .Values.serviceAccount.agent.name | default (printf "%s-agent" (include "operatord.fullname" .)) -}}
{{- end -}}

{{/* Where the operatord-policy ConfigMap is mounted; extra rule files are found here. */}}
{{- define "operatord.policyDir" -}}/etc/operatord/policy{{- end -}}

{{/*
The policy as stored: values.policy, plus the glob of the chart's extra rule files
(values.faultRules, shipped as rules.<name>.yaml in the same ConfigMap) when there are any.
Relative globs ("faults/*.yaml") resolve against policies/ in the image (the shipped rules).
*/}}
{{- define "operatord.policy" -}}
{{- $policy := deepCopy .Values.policy -}}
{{- if .Values.faultRules -}}
{{- $faults := $policy.faults | default dict -}}
{{- $rules := $faults.rules | default (list "faults/*.yaml") -}}
{{- $extra := printf "%s/rules.*.yaml" (include "operatord.policyDir" .) -}}
{{- if not (has $extra $rules) -}}
{{- $rules = append $rules $extra -}}
{{- end -}}
{{- $_ := set $faults "rules" $rules -}}
{{- $_ := set $policy "faults" $faults -}}
{{- end -}}
{{- toYaml $policy -}}
{{- end -}}

{{- define "operatord.burstEnabled" -}}
{{- if and .Values.policy.burst .Values.policy.burst.enabled -}}true{{- end -}}
{{- end -}}

{{/* Environment shared by every operatord container: settings, never credentials. */}}
{{- define "operatord.env" -}}
- name: OPERATORD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OPERATORD_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: OPERATORD_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- with .Values.prometheusUrl }}
- name: OPERATORD_PROMETHEUS_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.awsRegion }}
- name: OPERATORD_AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Restricted pod security (Pod Security Standards "restricted") for a container. */}}
{{- define "operatord.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "operatord.restrictedPod" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}
