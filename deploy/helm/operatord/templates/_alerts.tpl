{{- define "operatord.alertGroups" -}}
{{- $r := .Values.prometheusRule -}}
{{- $base := $r.runbookBaseUrl -}}
{{- $agent := printf "%s-agent" (include "operatord.fullname" .) -}}
groups:
  - name: operatord
    rules:
      - alert: OperatordBreakerOpen
        expr: max(operatord_breaker_open) == 1
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: operatord's circuit breaker is open; automatic cordons and drains have stopped.
          description: >-
            Too many nodes were cordoned inside the breaker window, which usually means a shared
            cause (driver rollout, fabric, storage) rather than bad nodes. A person decides:
            `operatord breaker status`, then `operatord breaker reset --reason ...`.
          metric: operatord_breaker_open
          runbook_url: {{ printf "%sOperatordBreakerOpen.md" $base }}
      - alert: OperatordPaused
        expr: max(operatord_paused) == 1
        for: {{ $r.pausedFor }}
        labels:
          severity: warning
        annotations:
          summary: operatord has been paused for more than {{ $r.pausedFor }}.
          description: >-
            Only findings are recorded while paused: no cordon, drain, scaling or burst. See who
            paused and why with `operatord status`; lift it with `operatord resume`.
          metric: operatord_paused
          runbook_url: {{ printf "%sOperatordPaused.md" $base }}
      - alert: OperatordBurstSpendNearCap
        expr: >-
          max by (period) (operatord_burst_spend_usd)
          >= {{ $r.spendNearCapRatio }} * max by (period) (operatord_burst_cap_usd > 0)
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: 'EC2 burst spend is at {{ "{{" }} $value | humanize {{ "}}" }} USD, near the per-{{ "{{" }} $labels.period {{ "}}" }} cap.'
          description: >-
            Burst spend reached {{ mulf $r.spendNearCapRatio 100 }} % of the policy cap for the
            period; at the cap operatord refuses launches and scale-in releases capacity.
          metric: operatord_burst_spend_usd, operatord_burst_cap_usd
          runbook_url: {{ printf "%sOperatordBurstSpendNearCap.md" $base }}
      - alert: OperatordMetricsStale
        expr: max(operatord_data_stale{source="prometheus"}) == 1
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: operatord's view of GPU and serving metrics is stale.
          description: >-
            The newest Prometheus samples operatord reads are older than the policy's
            metrics.staleness_limit; metric-driven scaling is frozen and scale-in is held.
          metric: operatord_data_stale
          runbook_url: {{ printf "%sOperatordMetricsStale.md" $base }}
      - alert: OperatordAgentMissing
        expr: >-
          max by (namespace, daemonset) (kube_daemonset_status_desired_number_scheduled{daemonset="{{ $agent }}", namespace="{{ .Release.Namespace }}"})
          - max by (namespace, daemonset) (kube_daemonset_status_number_available{daemonset="{{ $agent }}", namespace="{{ .Release.Namespace }}"})
          > 0
        for: {{ $r.agentMissingFor }}
        labels:
          severity: warning
        annotations:
          summary: '{{ "{{" }} $value {{ "}}" }} GPU node(s) have no running operatord agent.'
          description: >-
            Faults on those nodes are not detected. Uses kube-state-metrics (the agent DaemonSet's
            desired vs available pods); GPU nodes without the agent's node selector label are not
            counted here.
          metric: kube_daemonset_status_desired_number_scheduled, kube_daemonset_status_number_available
          runbook_url: {{ printf "%sOperatordAgentMissing.md" $base }}
      - alert: OperatordBurstWithoutLeader
        expr: >-
          sum(last_over_time(operatord_burst_instances{state!="terminated"}[6h])) > 0
          unless on ()
          (time() - max(operatord_leader_heartbeat_timestamp_seconds) < {{ include "operatord.promSeconds" $r.heartbeatMaxAge }})
        for: 2m
        labels:
          severity: critical
        annotations:
          summary: EC2 burst instances exist but no operatord leader is running; they cost money unattended.
          description: >-
            operatord last reported {{ "{{" }} $value {{ "}}" }} burst instance(s) and no leader heartbeat
            for {{ $r.heartbeatMaxAge }}. Nothing scales them in. Terminate or restore the controller.
          metric: operatord_burst_instances, operatord_leader_heartbeat_timestamp_seconds
          runbook_url: {{ printf "%sOperatordBurstWithoutLeader.md" $base }}
{{- end -}}

{{/* A Prometheus duration ("5m", "1h30m") in seconds, for arithmetic in PromQL. */}}
{{- define "operatord.promSeconds" -}}
{{- $total := 0 -}}
{{- $units := dict "ms" 0.001 "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 "y" 31536000 -}}
{{- range (regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1) -}}
{{- $n := regexFind "^[0-9]+" . | float64 -}}
{{- $u := trimPrefix (regexFind "^[0-9]+" .) . -}}
{{- $total = addf $total (mulf $n (get $units $u)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
