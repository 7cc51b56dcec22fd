{{/* Names: <fullname> is "kubevigil" for a release named kubevigil, like deploy/'s objects. */}}
{{- define "kubevigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubevigil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kubevigil.secretName" -}}
{{- default (include "kubevigil.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "kubevigil.serviceAccountName" -}}
{{- default (include "kubevigil.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "kubevigil.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- end -}}
{{- end -}}

{{/* The components this release runs: ["embedded"] or the four roles. */}}
{{- define "kubevigil.components" -}}
{{- if eq .Values.mode "distributed" -}}
{{- toJson (list "ingest" "correlator" "api" "notifier") -}}
{{- else -}}
{{- toJson (list "embedded") -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's objects: <fullname> for embedded, <fullname>-<role> otherwise. */}}
{{- define "kubevigil.componentName" -}}
{{- if eq .component "embedded" -}}
{{- include "kubevigil.fullname" .root -}}
{{- else -}}
{{- printf "%s-%s" (include "kubevigil.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; dict "root" $ "component" "<component or empty>". */}}
{{- define "kubevigil.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubevigil.selectorLabels" . }}
app.kubernetes.io/part-of: kubevigil
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* What selects a component's pods (or, without a component, every pod of the release). */}}
{{- define "kubevigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevigil.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/*
A memory quantity ("2Gi", "512Mi", "1.5G", "1073741824") in MiB, as a float.
*/}}
{{- define "kubevigil.mebibytes" -}}
{{- $q := toString . -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q) -}}
{{- fail (printf "memory limit %q is not a quantity kubevigil's chart can size the heap from (e.g. 512Mi, 2Gi); set heapMiB" $q) -}}
{{- end -}}
{{- $number := regexReplaceAll "^([0-9.]+)([A-Za-z]*)$" $q "${1}" | float64 -}}
{{- $unit := regexReplaceAll "^([0-9.]+)([A-Za-z]*)$" $q "${2}" -}}
{{- $perUnit := dict "" (divf 1 1048576) "Ki" (divf 1 1024) "Mi" 1.0 "Gi" 1024.0 "Ti" 1048576.0 "k" (divf 1000 1048576) "M" (divf 1000000 1048576) "G" (divf 1000000000 1048576) "T" (divf 1000000000000 1048576) -}}
{{- mulf $number (get $perUnit $unit) -}}
{{- end -}}

{{/*
NODE_OPTIONS' heap size for a role's values (.heapMiB, or 75% of .resources.limits.memory).
*/}}
{{- define "kubevigil.heapMiB" -}}
{{- if .heapMiB -}}
{{- int .heapMiB -}}
{{- else -}}
{{- $limit := dig "limits" "memory" "" (.resources | default dict) -}}
{{- if not $limit -}}
{{- fail "a kubevigil container without resources.limits.memory needs heapMiB (the V8 heap must stay below the memory it may use)" -}}
{{- end -}}
{{- mulf (include "kubevigil.mebibytes" $limit | float64) 0.75 | floor | int -}}
{{- end -}}
{{- end -}}

{{/*
An egress rule to a peer described by {namespaceSelector, podSelector, cidrs, ports}; a list of
one NetworkPolicyEgressRule. dict "peer" <values> "what" "<name for errors>".
*/}}
{{- define "kubevigil.egressRule" -}}
{{- $to := list -}}
{{- $selector := dict -}}
{{- with .peer.namespaceSelector }}{{ $_ := set $selector "namespaceSelector" . }}{{ end -}}
{{- with .peer.podSelector }}{{ $_ := set $selector "podSelector" . }}{{ end -}}
{{- if $selector }}{{ $to = append $to $selector }}{{ end -}}
{{- range .peer.cidrs }}{{ $to = append $to (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- if not $to -}}
{{- fail (printf "%s.networkPolicy names no peer: give a namespaceSelector, a podSelector or cidrs (an empty rule would allow every destination)" .what) -}}
{{- end -}}
{{- $ports := list -}}
{{- range .peer.ports }}{{ $ports = append $ports (dict "protocol" "TCP" "port" (int .)) }}{{ end -}}
{{- toYaml (list (dict "to" $to "ports" $ports)) -}}
{{- end -}}

{{/* The ports list of a rule: TCP ports from a list of numbers. */}}
{{- define "kubevigil.tcpPorts" -}}
{{- $ports := list -}}
{{- range . }}{{ $ports = append $ports (dict "protocol" "TCP" "port" (int .)) }}{{ end -}}
{{- toYaml $ports -}}
{{- end -}}

{{/* True ("true") when Slack or signed webhooks are configured: the notifying pod needs HTTPS out. */}}
{{- define "kubevigil.httpsEgress" -}}
{{- if or .Values.slack.enabled .Values.slack.botToken .Values.slack.webhookUrl .Values.webhooks.urls -}}
true
{{- end -}}
{{- end -}}

{{/*
Cross-field checks that values.schema.json cannot express; run once, from the ConfigMap.
*/}}
{{- define "kubevigil.validate" -}}
{{- if not .Values.secret.existingSecret -}}
{{- if or (not .Values.secret.ingestToken) (not .Values.secret.apiToken) -}}
{{- fail "set secret.ingestToken and secret.apiToken (at least 16 random characters each: openssl rand -hex 24), or secret.existingSecret to the name of a Secret holding KUBEVIGIL_INGEST_TOKEN and KUBEVIGIL_API_TOKEN" -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.mode "distributed" -}}
{{- if not .Values.kafka.brokers -}}
{{- fail "mode distributed needs kafka.brokers (host:port of your Kafka bootstrap brokers)" -}}
{{- end -}}
{{- if not .Values.redis.url -}}
{{- fail "mode distributed needs redis.url (redis://host:6379 of the Redis that holds correlator state)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.loki.url (not .Values.loki.queries) -}}
{{- fail "loki.url is set but loki.queries is empty: give at least one {name, query}, e.g. [{name: istio, query: '{container=\"istio-proxy\"}'}]" -}}
{{- end -}}
{{- if and .Values.loki.queries (not .Values.loki.url) -}}
{{- fail "loki.queries is set but loki.url is not: the poller needs the Loki base URL" -}}
{{- end -}}
{{- if and .Values.tempo.url (not .Values.tempo.queries) -}}
{{- fail "tempo.url is set but tempo.queries is empty: give at least one TraceQL query, e.g. ['{ span.http.response.status_code = 403 }']" -}}
{{- end -}}
{{- if and .Values.tempo.queries (not .Values.tempo.url) -}}
{{- fail "tempo.queries is set but tempo.url is not: the poller needs the Tempo base URL" -}}
{{- end -}}
{{- if .Values.secret.existingSecret -}}
{{- $ignored := list -}}
{{- range $k, $v := dict "secret.ingestToken" .Values.secret.ingestToken "secret.apiToken" .Values.secret.apiToken "secret.apiReadToken" .Values.secret.apiReadToken "secret.metricsToken" .Values.secret.metricsToken "secret.extra" .Values.secret.extra "slack.botToken" .Values.slack.botToken "slack.channel" .Values.slack.channel "slack.routes" .Values.slack.routes "slack.webhookUrl" .Values.slack.webhookUrl "webhooks.urls" .Values.webhooks.urls "webhooks.secret" .Values.webhooks.secret "loki.token" .Values.loki.token "tempo.token" .Values.tempo.token -}}
{{- if $v }}{{ $ignored = append $ignored $k }}{{ end -}}
{{- end -}}
{{- if $ignored -}}
{{- fail (printf "secret.existingSecret is set, so the chart creates no Secret and would ignore %s: put those keys (KUBEVIGIL_INGEST_TOKEN, SLACK_BOT_TOKEN, KUBEVIGIL_WEBHOOK_URLS, LOKI_TOKEN, …) in Secret %s instead (set slack.enabled for Slack's egress)" (join ", " $ignored) .Values.secret.existingSecret) -}}
{{- end -}}
{{- else -}}
{{- if and .Values.slack.botToken (not .Values.slack.channel) (not .Values.slack.routes) -}}
{{- fail "slack.botToken is set but neither slack.channel nor slack.routes is: name a channel to post to" -}}
{{- end -}}
{{- if and (or .Values.slack.channel .Values.slack.routes) (not .Values.slack.botToken) -}}
{{- fail "slack.channel or slack.routes is set without slack.botToken (a webhookUrl's channel is fixed by the webhook)" -}}
{{- end -}}
{{- if and .Values.metrics.podMonitor.enabled (not .Values.secret.metricsToken) -}}
{{- fail "metrics.podMonitor.enabled: set secret.metricsToken (at least 16 random characters: openssl rand -hex 24); the PodMonitor's scrapes present it, since /metrics asks for a token once the API has one" -}}
{{- end -}}
{{- if and .Values.webhooks.urls (lt (len .Values.webhooks.secret) 16) -}}
{{- fail "webhooks.urls is set: webhooks.secret must be a signing key of at least 16 characters (openssl rand -hex 32)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
