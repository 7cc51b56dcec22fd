/** admission-policy: Gatekeeper, Kyverno or Pod Security controls against the pod techniques the attack used. */
import type { Remediation, TimelineEntry } from '../../incident.js';
import { hasTrait, type KindTrait } from '../../signal-kinds.js';
import { manifest, metadata, remediation, withRejections } from '../building-blocks.js';
import type { PlanContext } from '../context.js';
import { checkNames, display } from '../names.js';

interface GatekeeperConstraint {
  kind: string;
  name: string;
  /** ConstraintTemplate name and its folder in gatekeeper-library's pod-security-policy library. */
  template: string;
  libraryPath: string;
  parameters?: Record<string, unknown>;
}

/** A pod-level technique, and the controls that refuse it in each engine. */
interface PodControl {
  /** The trait of the signal kinds that use the technique. */
  trait: KindTrait;
  what: string;
  gatekeeper: GatekeeperConstraint[];
  kyverno: { name: string; message: string; pattern: Record<string, unknown> };
}

const notPrivileged = [{ '=(securityContext)': { '=(privileged)': 'false' } }];

const POD_CONTROLS: readonly PodControl[] = [
  {
    trait: 'privileged-container',
    what: 'privileged containers',
    gatekeeper: [
      {
        kind: 'K8sPSPPrivilegedContainer',
        name: 'kubevigil-privileged-container',
        template: 'k8spspprivilegedcontainer',
        libraryPath: 'privileged-containers',
      },
    ],
    kyverno: {
      name: 'disallow-privileged-containers',
      message: 'Privileged containers are not allowed: securityContext.privileged must be unset or false.',
      pattern: { spec: { '=(ephemeralContainers)': notPrivileged, '=(initContainers)': notPrivileged, containers: notPrivileged } },
    },
  },
  {
    trait: 'host-namespace',
    what: 'host namespaces',
    gatekeeper: [
      { kind: 'K8sPSPHostNamespace', name: 'kubevigil-host-namespace', template: 'k8spsphostnamespace', libraryPath: 'host-namespaces' },
      // K8sPSPHostNamespace covers hostPID and hostIPC only; hostNetwork is this template's job.
      {
        kind: 'K8sPSPHostNetworkingPorts',
        name: 'kubevigil-host-network',
        template: 'k8spsphostnetworkingports',
        libraryPath: 'host-network-ports',
        parameters: { hostNetwork: false },
      },
    ],
    kyverno: {
      name: 'disallow-host-namespaces',
      message: 'Sharing the host network, PID or IPC namespace is not allowed.',
      pattern: { spec: { '=(hostNetwork)': 'false', '=(hostPID)': 'false', '=(hostIPC)': 'false' } },
    },
  },
  {
    trait: 'host-path',
    what: 'hostPath volumes',
    // An empty allowedHostPaths list forbids every hostPath.
    gatekeeper: [
      {
        kind: 'K8sPSPHostFilesystem',
        name: 'kubevigil-host-filesystem',
        template: 'k8spsphostfilesystem',
        libraryPath: 'host-filesystem',
        parameters: { allowedHostPaths: [] },
      },
    ],
    kyverno: {
      name: 'disallow-host-path',
      message: 'hostPath volumes are not allowed.',
      pattern: { spec: { '=(volumes)': [{ 'X(hostPath)': 'null' }] } },
    },
  },
];

const EXCLUDED_NAMESPACES = ['kube-system'];
const LIBRARY = 'https://raw.githubusercontent.com/open-policy-agent/gatekeeper-library/master/library/pod-security-policy';

function gatekeeperPolicy(ctx: PlanContext, controls: readonly PodControl[], context: string): Remediation {
  const constraints = controls.flatMap((c) => c.gatekeeper);
  const file = 'gatekeeper-kubevigil-pod-security.yaml';
  const docs = constraints.map((g) => ({
    apiVersion: 'constraints.gatekeeper.sh/v1beta1',
    kind: g.kind,
    metadata: metadata(ctx, g.name),
    spec: {
      match: { kinds: [{ apiGroups: [''], kinds: ['Pod'] }], excludedNamespaces: EXCLUDED_NAMESPACES },
      ...(g.parameters ? { parameters: g.parameters } : {}),
    },
  }));
  return remediation(
    'admission-policy',
    `Gatekeeper: deny ${controls.map((c) => c.what).join(', ')}`,
    `${context} These Gatekeeper constraints refuse such pods in every namespace but ${EXCLUDED_NAMESPACES.join(', ')}. They need the gatekeeper-library ConstraintTemplates ${constraints.map((g) => g.template).join(', ')}: if the first commands answer NotFound, install them first (${constraints.map((g) => `${LIBRARY}/${g.libraryPath}/template.yaml`).join(', ')}). Use this or the Kyverno policy, whichever engine the cluster runs.`,
    `Every new pod with ${controls.map((c) => c.what).join(' or ')} outside ${EXCLUDED_NAMESPACES.join(', ')} is refused, legitimate ones too (CNI or storage agents, node exporters): add their namespaces to excludedNamespaces, or set spec.enforcementAction: dryrun first and read the constraints' status.violations. Running pods are not affected.`,
    [...constraints.map((g) => `kubectl get constrainttemplate ${g.template}`), `kubectl apply -f ${file}`, 'kubectl get constraints'],
    [manifest(file, docs)],
  );
}

function kyvernoPolicy(ctx: PlanContext, controls: readonly PodControl[], context: string): Remediation {
  const file = 'kyverno-kubevigil-pod-security.yaml';
  const policy = {
    apiVersion: 'kyverno.io/v1',
    kind: 'ClusterPolicy',
    metadata: metadata(ctx, 'kubevigil-pod-security'),
    spec: {
      validationFailureAction: 'Enforce',
      background: true,
      rules: controls.map((c) => ({
        name: c.kyverno.name,
        match: { any: [{ resources: { kinds: ['Pod'] } }] },
        exclude: { any: [{ resources: { namespaces: EXCLUDED_NAMESPACES } }] },
        validate: { message: c.kyverno.message, pattern: c.kyverno.pattern },
      })),
    },
  };
  return remediation(
    'admission-policy',
    `Kyverno: deny ${controls.map((c) => c.what).join(', ')}`,
    `${context} This Kyverno ClusterPolicy enforces the same in every namespace but ${EXCLUDED_NAMESPACES.join(', ')}; Kyverno extends Pod rules to Deployments, Jobs and other controllers. Use this or the Gatekeeper constraints, whichever engine the cluster runs.`,
    `Every new pod or workload with ${controls.map((c) => c.what).join(' or ')} outside ${EXCLUDED_NAMESPACES.join(', ')} is refused, legitimate ones too; the background scan reports existing violations in policy reports (last command) without touching running pods.`,
    [`kubectl apply -f ${file}`, 'kubectl get clusterpolicy kubevigil-pod-security', 'kubectl get policyreport -A'],
    [manifest(file, [policy])],
  );
}

function podSecurityLabels(namespaces: readonly string[], context: string): Remediation {
  return remediation(
    'admission-policy',
    `Pod Security Admission: enforce baseline in ${namespaces.join(', ')}`,
    `${context} The built-in Pod Security baseline level refuses privileged containers, host namespaces and hostPath volumes with no extra component; restricted is set to warn, the next step. The dry run lists the running pods that would violate it.`,
    'New pods that need those privileges in these namespaces are refused. If a namespace already enforces restricted, keep it: this label would lower it to baseline.',
    namespaces.flatMap((ns) => [
      `kubectl get namespace ${ns} --show-labels`,
      `kubectl label namespace ${ns} pod-security.kubernetes.io/enforce=baseline --overwrite --dry-run=server`,
      `kubectl label namespace ${ns} pod-security.kubernetes.io/enforce=baseline pod-security.kubernetes.io/warn=restricted --overwrite`,
    ]),
  );
}

const ENGINE_NAMES: Record<string, string> = {
  gatekeeper: 'Gatekeeper constraint',
  kyverno: 'Kyverno policy',
  'pod-security': 'Pod Security level',
  webhook: 'admission webhook',
};

/** Which control refused the denied attempts, in words. */
function heldBy(attempts: readonly TimelineEntry[]): string {
  const policies = [
    ...new Set(
      attempts.flatMap((e) => {
        const engine = e.attributes.admissionEngine;
        const names = (e.attributes.admissionPolicies ?? '').split(',').filter(Boolean);
        return engine ? names.map((n) => `${ENGINE_NAMES[engine] ?? `${display(engine)} policy`} ${display(n)}`) : [];
      }),
    ),
  ];
  return policies.length > 0
    ? `Every attempt was denied: the existing ${policies.join(', ')} held.`
    : 'Every attempt was denied before admission (by authorization), so no admission policy was put to the test.';
}

export function admissionPolicy(ctx: PlanContext): Remediation[] {
  const attempts = ctx.incident.timeline.filter((e) => POD_CONTROLS.some((c) => hasTrait(e.kind, c.trait)));
  if (attempts.length === 0) return [];
  const admitted = POD_CONTROLS.filter((c) => attempts.some((e) => hasTrait(e.kind, c.trait) && e.outcome !== 'denied'));
  const targets = [...new Set(attempts.flatMap((e) => (e.target.namespace ? [e.target.namespace] : [])))];
  const checked = checkNames(targets.filter((ns) => !EXCLUDED_NAMESPACES.includes(ns)).sort());
  const rejected = checked.rejected;
  // Namespaces the cluster no longer has take no label.
  const gone = ctx.inventory ? checked.ok.filter((ns) => !ctx.inventory!.namespaceExists(ns)) : [];
  const ok = checked.ok.filter((ns) => !gone.includes(ns));
  const excluded = targets.filter((ns) => EXCLUDED_NAMESPACES.includes(ns));
  const excludedNote = `${excluded.length > 0 ? ` ${excluded.join(', ')} is left out: system components there need these privileges.` : ''}${
    gone.length > 0
      ? ` ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'} left out: the cluster (inventory) no longer has ${gone.length === 1 ? 'it' : 'them'}.`
      : ''
  }`;
  if (admitted.length === 0) {
    const out =
      ok.length > 0
        ? [
            podSecurityLabels(
              ok,
              `${heldBy(attempts)} Pod Security labels add defence in depth that holds even if a policy engine is removed or bypassed.${excludedNote}`,
            ),
          ]
        : [];
    return withRejections(out, rejected, 'admission-policy', 'Harden the namespaces the attack targeted');
  }
  const where = ok.length > 0 ? ` in ${ok.join(', ')}` : '';
  const what = admitted.map((c) => c.what).join(', ');
  const context = attempts.some((e) => e.outcome === 'allowed')
    ? `A pod with ${what} was admitted${where}: no policy stopped it.`
    : `A request for a pod with ${what}${where} has no recorded outcome, so nothing shows a policy would refuse it.`;
  const engines = [gatekeeperPolicy(ctx, admitted, context), kyvernoPolicy(ctx, admitted, context)];
  // The engine the cluster already showed in a denial goes first.
  if (attempts.some((e) => e.attributes.admissionEngine === 'kyverno')) engines.reverse();
  const psa = ok.length > 0 ? [podSecurityLabels(ok, `Alternative without a policy engine, for the namespaces the attack used.${excludedNote}`)] : [];
  return withRejections([...engines, ...psa], rejected, 'admission-policy', 'Harden the namespaces the attack targeted');
}
