/**
 * What the inventory keeps of each Kubernetes object: a few fields, never a whole object (a pod's
 * spec and status are kilobytes; its projection is a few hundred bytes). Pure functions, tested
 * against objects as the API server returns them.
 */
import type { BindingInfo, PodInfo, RoleInfo, RuleInfo, SubjectInfo, WorkloadRef } from '../../correlator/inventory.js';
import { isObj } from '../../correlator/json-guards.js';
import type { KubeObject } from './reflector.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const arr = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(isObj) : []);

/** The controller owner of an object (ownerReferences with controller: true). */
export interface OwnerRef {
  kind: string;
  name: string;
}

export function controllerOf(o: KubeObject): OwnerRef | undefined {
  const refs = arr((o.metadata as Record<string, unknown> | undefined)?.ownerReferences);
  const c = refs.find((r) => r.controller === true) ?? refs[0];
  const kind = str(c?.kind);
  const name = str(c?.name);
  return kind && name ? { kind, name } : undefined;
}

/** Secrets a pod spec mounts (volumes, projected volumes), pulls with, or reads through env. */
export function secretsOfPodSpec(spec: unknown): string[] {
  if (!isObj(spec)) return [];
  const out = new Set<string>();
  for (const v of arr(spec.volumes)) {
    const s = isObj(v.secret) ? str(v.secret.secretName) : undefined;
    if (s) out.add(s);
    if (isObj(v.projected)) for (const src of arr(v.projected.sources)) if (isObj(src.secret) && str(src.secret.name)) out.add(src.secret.name as string);
  }
  for (const c of [...arr(spec.containers), ...arr(spec.initContainers)]) {
    for (const e of arr(c.env)) {
      const ref = isObj(e.valueFrom) && isObj(e.valueFrom.secretKeyRef) ? str(e.valueFrom.secretKeyRef.name) : undefined;
      if (ref) out.add(ref);
    }
    for (const ef of arr(c.envFrom)) if (isObj(ef.secretRef) && str(ef.secretRef.name)) out.add(ef.secretRef.name as string);
  }
  for (const p of arr(spec.imagePullSecrets)) if (str(p.name)) out.add(p.name as string);
  return [...out].slice(0, 64);
}

const APP_LABELS = ['app.kubernetes.io/name', 'app', 'k8s-app', 'app.kubernetes.io/instance', 'service.istio.io/canonical-name'];

function appLabel(o: KubeObject): string | undefined {
  const labels = o.metadata?.labels ?? {};
  for (const k of APP_LABELS) if (str(labels[k])) return labels[k];
  return undefined;
}

/** A pod, with its owner as written (the inventory resolves ReplicaSet → Deployment, Job → CronJob). */
export interface PodRecord extends Omit<PodInfo, 'workload'> {
  owner?: OwnerRef;
}

export function projectPod(o: KubeObject): PodRecord | undefined {
  const name = o.metadata?.name;
  const namespace = o.metadata?.namespace;
  if (!name || !namespace) return undefined;
  const spec = isObj(o.spec) ? o.spec : {};
  const status = isObj(o.status) ? o.status : {};
  const ips = arr(status.podIPs)
    .map((p) => str(p.ip))
    .filter((x): x is string => x !== undefined);
  if (!ips.length && str(status.podIP)) ips.push(status.podIP as string);
  const owner = controllerOf(o);
  const app = appLabel(o);
  return {
    namespace,
    name,
    uid: o.metadata?.uid ?? '',
    ips,
    ...(str(spec.nodeName) ? { node: spec.nodeName as string } : {}),
    serviceAccount: str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? 'default',
    ...(owner ? { owner } : {}),
    ...(app ? { app } : {}),
    secrets: secretsOfPodSpec(spec),
  };
}

/** A workload controller and what its pod template says. */
export interface WorkloadRecord extends WorkloadRef {
  owner?: OwnerRef;
  serviceAccount?: string;
  secrets: string[];
  app?: string;
}

export function projectWorkload(kind: WorkloadRef['kind']) {
  return (o: KubeObject): WorkloadRecord | undefined => {
    const name = o.metadata?.name;
    const namespace = o.metadata?.namespace;
    if (!name || !namespace) return undefined;
    const spec = isObj(o.spec) ? o.spec : {};
    const template =
      kind === 'CronJob' ? (isObj(spec.jobTemplate) && isObj(spec.jobTemplate.spec) ? spec.jobTemplate.spec.template : undefined) : spec.template;
    const podSpec = isObj(template) && isObj(template.spec) ? template.spec : undefined;
    const labels =
      isObj(template) && isObj(template.metadata) && isObj(template.metadata.labels) ? (template.metadata.labels as Record<string, string>) : undefined;
    const owner = controllerOf(o);
    const app = appLabel(o) ?? (labels ? appLabel({ metadata: { labels } }) : undefined);
    const sa = podSpec ? (str(podSpec.serviceAccountName) ?? str(podSpec.serviceAccount) ?? 'default') : undefined;
    return {
      kind,
      namespace,
      name,
      ...(owner ? { owner } : {}),
      ...(sa ? { serviceAccount: sa } : {}),
      secrets: secretsOfPodSpec(podSpec),
      ...(app ? { app } : {}),
    };
  };
}

function rulesOf(v: unknown): RuleInfo[] {
  return arr(v)
    .slice(0, 256)
    .map((r) => {
      const out: RuleInfo = { verbs: strs(r.verbs) };
      for (const k of ['apiGroups', 'resources', 'resourceNames', 'nonResourceURLs'] as const) {
        const xs = strs(r[k]);
        if (xs.length) out[k] = xs;
      }
      return out;
    });
}

export function projectRole(kind: 'Role' | 'ClusterRole') {
  return (o: KubeObject): RoleInfo | undefined => {
    const name = o.metadata?.name;
    if (!name) return undefined;
    const labels = o.metadata?.labels ?? {};
    return {
      kind,
      name,
      ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
      rules: rulesOf(o.rules),
      aggregateTo: Object.keys(labels)
        .filter((k) => k.startsWith('rbac.authorization.k8s.io/aggregate-to-') && labels[k] === 'true')
        .map((k) => k.slice('rbac.authorization.k8s.io/aggregate-to-'.length)),
      aggregated: isObj(o.aggregationRule),
    };
  };
}

export function projectBinding(kind: 'RoleBinding' | 'ClusterRoleBinding') {
  return (o: KubeObject): BindingInfo | undefined => {
    const name = o.metadata?.name;
    const ref = isObj(o.roleRef) ? o.roleRef : undefined;
    if (!name || !ref || (ref.kind !== 'Role' && ref.kind !== 'ClusterRole') || !str(ref.name)) return undefined;
    const subjects: SubjectInfo[] = arr(o.subjects)
      .slice(0, 256)
      .flatMap((s) =>
        (s.kind === 'User' || s.kind === 'Group' || s.kind === 'ServiceAccount') && str(s.name)
          ? [{ kind: s.kind, name: s.name as string, ...(str(s.namespace) ? { namespace: s.namespace as string } : {}) }]
          : [],
      );
    return {
      kind,
      name,
      ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
      roleRef: { kind: ref.kind, name: ref.name as string },
      subjects,
    };
  };
}

/** Namespaces: whether the mesh injects their pods. */
export interface NamespaceRecord {
  name: string;
  mesh: boolean;
}

export function projectNamespace(o: KubeObject): NamespaceRecord | undefined {
  const name = o.metadata?.name;
  if (!name) return undefined;
  const labels = o.metadata?.labels ?? {};
  const annotations = o.metadata?.annotations ?? {};
  const mesh = labels['istio-injection'] === 'enabled' || str(labels['istio.io/rev']) !== undefined || annotations['linkerd.io/inject'] === 'enabled';
  return { name, mesh };
}

/** Objects kubevigil only needs to know exist (service accounts, services, mesh policies…): their namespace. */
export function projectName(o: KubeObject): string | undefined {
  return o.metadata?.name ? (o.metadata.namespace ?? '') : undefined;
}
