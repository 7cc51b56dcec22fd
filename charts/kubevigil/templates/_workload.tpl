{{/*
A kubevigil Deployment, the same for every component but for what the arguments say:
  root       the top context ($)
  component  embedded | ingest | correlator | api | notifier
  role       the component's values (resources, heapMiB, terminationGracePeriodSeconds, replicas)
  replicas   the replica count
  strategy   the Deployment strategy
  data       the volume mounted at /data (a PersistentVolumeClaim or an emptyDir)
  spread     spread the pods across nodes
*/}}
{{- define "kubevigil.deployment" -}}
{{- $root := .root -}}
{{- $ctx := dict "root" $root "component" .component -}}
{{- $command := list "node" "bin/kubevigil.js" "serve" -}}
{{- if ne .component "embedded" }}{{ $command = concat $command (list "--role" .component) }}{{ end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "kubevigil.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "kubevigil.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ int .replicas }}
  strategy:
    {{- toYaml .strategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "kubevigil.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "kubevigil.selectorLabels" $ctx | nindent 8 }}
        app.kubernetes.io/part-of: kubevigil
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # For Prometheus set-ups that discover pods by annotation (the operator uses the PodMonitor).
        # /metrics asks for the metrics token: such a job must send it, to these pods only.
        prometheus.io/scrape: "true"
        prometheus.io/port: "8080"
        prometheus.io/path: /metrics
        # Settings come in through envFrom, read at start: roll the pods when they change.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if not $root.Values.secret.existingSecret }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "kubevigil.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.rbac.inventory.enabled }}
      # The Service named like the release would otherwise inject KUBEVIGIL_PORT=tcp://…:8080 into
      # the pod, which clashes with kubevigil's own KUBEVIGIL_PORT setting.
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ int .role.terminationGracePeriodSeconds }}
      {{- with $root.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # Pod Security "restricted".
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
      {{- if .spread }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "kubevigil.selectorLabels" $ctx | nindent 14 }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: kubevigil
          image: {{ include "kubevigil.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          workingDir: /app
          command: {{ toJson $command }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "kubevigil.fullname" $root }}
            - secretRef:
                name: {{ include "kubevigil.secretName" $root }}
          env:
            # Listening beyond loopback: kubevigil then insists on KUBEVIGIL_INGEST_TOKEN and
            # KUBEVIGIL_API_TOKEN (from the Secret).
            - name: KUBEVIGIL_HOST
              value: 0.0.0.0
            # The V8 heap stays below the container's memory limit (about 75% of it).
            - name: NODE_OPTIONS
              value: --max-old-space-size={{ include "kubevigil.heapMiB" .role }}
            {{- with $root.Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            runAsGroup: 10001
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            privileged: false
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          # 503 while starting or draining, or while Kafka (or Redis, for correlators) is unreachable.
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          {{- with .role.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: data
              mountPath: /data
            # The root filesystem is read-only; `kubevigil demo` uses /tmp.
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: data
          {{- toYaml .data | nindent 10 }}
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
{{- end -}}

{{/* A PersistentVolumeClaim for a component's /data; dict "root" $ "component" … "persistence" …. */}}
{{- define "kubevigil.pvc" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "kubevigil.componentName" $ctx }}-data
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "kubevigil.labels" $ctx | nindent 4 }}
  {{- with .persistence.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  accessModes:
    {{- toYaml .persistence.accessModes | nindent 4 }}
  {{- with .persistence.storageClassName }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ .persistence.size }}
{{- end -}}

{{/* The volume of a PersistentVolumeClaim for /data: the existing claim, or the chart's. */}}
{{- define "kubevigil.claimVolume" -}}
{{- $claim := .persistence.existingClaim | default (printf "%s-data" (include "kubevigil.componentName" (dict "root" .root "component" .component))) -}}
{{- toYaml (dict "persistentVolumeClaim" (dict "claimName" $claim)) -}}
{{- end -}}

{{/* A ClusterIP Service on port 8080 for a component; dict "root" $ "component" … "name" …. */}}
{{- define "kubevigil.service" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "kubevigil.labels" $ctx | nindent 4 }}
  {{- with .root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .root.Values.service.type }}
  selector:
    {{- include "kubevigil.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
{{- end -}}
