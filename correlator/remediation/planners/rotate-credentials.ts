/**
 * rotate-credentials: the secrets read or listed, and the actor's own tokens, treated as stolen.
 * With the cluster inventory, the restarts name the exact workloads that mount or read a stolen
 * secret, and a service account or namespace that is gone is said to be so, with no command.
 */
import type { CredentialSource, Remediation, WorkloadOwner } from '../../incident.js';
import type { ClusterInventory } from '../../inventory.js';
import { noteOnly, plural, remediation, withRejections } from '../building-blocks.js';
import { livePod, RESTARTABLE, workloadText } from '../cluster.js';
import { entriesWith, rejectedActor, type PlanContext } from '../context.js';
import { checkNames, display, isName, refText, type Ref } from '../names.js';
import { hasTrait } from '../../signal-kinds.js';
import { actorPods } from './actor-pods.js';
import { secretsRead } from './secrets-read.js';

/** The command that gives a workload's pods the new value: a rollout restart, or deleting its live pods by name; undefined when nothing runs. */
function restartCommand(inv: ClusterInventory, w: WorkloadOwner): string | undefined {
  if (!isName(w.namespace) || !isName(w.name) || !inv.workload(w.namespace, w.name, w.kind)) return undefined;
  if (RESTARTABLE.has(w.kind)) return `kubectl -n ${w.namespace} rollout restart ${w.kind.toLowerCase()}/${w.name}`;
  const pods = inv
    .podsOf(w)
    .filter((p) => p.deletedAt === undefined)
    .map((p) => p.name)
    .filter(isName);
  return pods.length ? `kubectl -n ${w.namespace} delete pod ${pods.join(' ')}` : undefined;
}

/** Rotation with the consumers the cluster shows: the workloads that mount the secret or read it from the environment, each restarted by name. */
function rotateSecretInCluster(inv: ClusterInventory, s: Ref, reads: number): Remediation {
  const head = `Secret ${refText(s)} was read in this incident (${plural(reads, 'allowed read')}), so its value must be treated as stolen. Rotate it at its source, the database or service that issued it (kubevigil cannot know which)`;
  if (!inv.namespaceExists(s.namespace))
    return noteOnly(
      'rotate-credentials',
      `Rotate the credential that was in secret ${refText(s)}`,
      `${head}. The cluster (inventory) no longer has namespace ${s.namespace}, so the secret and its consumers are gone with it, but the stolen value stays valid at its source until rotated there.`,
    );
  const consumers = inv.consumersOfSecret(s.namespace, s.name);
  const known = consumers.filter((w) =>
    (['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicaSet', 'ReplicationController'] as string[]).includes(w.kind),
  );
  const restarted = known.flatMap((w) => {
    const c = restartCommand(inv, w);
    return c ? [{ w, c }] : [];
  });
  const restarts = restarted.map((r) => r.c);
  const scheduled = known.filter((w) => w.kind === 'CronJob');
  const listed = consumers.map(workloadText).join(', ');
  const restartWords = restarted.length
    ? `the last ${restarted.length === 1 ? 'command restarts' : 'commands restart'} ${restarted.map((r) => workloadText(r.w)).join(', ')}`
    : 'none has a running pod to restart';
  const users = consumers.length
    ? `In the cluster (inventory), ${listed} ${consumers.length === 1 ? 'mounts it or reads' : 'mount it or read'} it from the environment: ${restartWords}${scheduled.length ? `; ${scheduled.map(workloadText).join(', ')} pick${scheduled.length === 1 ? 's' : ''} the new value up on ${scheduled.length === 1 ? 'its' : 'their'} next run` : ''}.`
    : 'In the cluster (inventory), no workload mounts it or reads it from the environment, so nothing needs a restart (whatever outside the cluster uses the credential still needs the new value).';
  return remediation(
    'rotate-credentials',
    `Rotate the credential in secret ${refText(s)}`,
    `${head}, then update the secret the way it is managed (the first command prints its labels, owner and the managers that write it: External Secrets, Sealed Secrets, Helm or kubectl; not its annotations, which can hold the value). ${users} Deleting or re-creating the secret alone changes nothing: the stolen value stays valid at the source.`,
    `Consumers keep the old value until restarted and fail against the rotated source in between${restarts.length ? '; each restart replaces the pods of one workload, as its update strategy allows' : ''}.`,
    [
      `kubectl -n ${s.namespace} get secret ${s.name} -o jsonpath='{.metadata.labels}{"\\n"}{.metadata.ownerReferences[*].kind}/{.metadata.ownerReferences[*].name}{"\\n"}{.metadata.managedFields[*].manager}{"\\n"}'`,
      ...restarts,
    ],
  );
}

function rotateSecret(ctx: PlanContext, s: Ref): Remediation {
  const reads = entriesWith(ctx, 'secret-read', true).filter((e) => e.target.namespace === s.namespace && e.target.name === s.name).length;
  if (ctx.inventory) return rotateSecretInCluster(ctx.inventory, s, reads);
  const consumers = `{range .items[*]}{.metadata.name}{" "}{.spec.volumes[*].secret.secretName}{" "}{.spec.containers[*].env[*].valueFrom.secretKeyRef.name}{" "}{.spec.containers[*].envFrom[*].secretRef.name}{"\\n"}{end}`;
  return remediation(
    'rotate-credentials',
    `Rotate the credential in secret ${refText(s)}`,
    `Secret ${refText(s)} was read in this incident (${plural(reads, 'allowed read')}), so its value must be treated as stolen. Rotate it at its source, the database or service that issued it (kubevigil cannot know which), then update the secret the way it is managed (the first command prints its labels, owner and the managers that write it: External Secrets, Sealed Secrets, Helm or kubectl; not its annotations, which can hold the value), and restart the workloads that use it (the second command lists pods that mount it or read it from the environment). Deleting or re-creating the secret alone changes nothing: the stolen value stays valid at the source.`,
    `Consumers keep the old value until restarted and fail against the rotated source in between; the last command restarts every Deployment in ${s.namespace}, so restart only the consumers listed if that is too broad.`,
    [
      `kubectl -n ${s.namespace} get secret ${s.name} -o jsonpath='{.metadata.labels}{"\\n"}{.metadata.ownerReferences[*].kind}/{.metadata.ownerReferences[*].name}{"\\n"}{.metadata.managedFields[*].manager}{"\\n"}'`,
      `kubectl -n ${s.namespace} get pods -o jsonpath='${consumers}' | grep -wF ${s.name}`,
      `kubectl -n ${s.namespace} rollout restart deployment`,
    ],
  );
}

/** Secrets listed (values included, as list responses carry them) in a namespace, or everywhere when `ns` is undefined. */
function exposedByList(ns: string | undefined, inv?: ClusterInventory): Remediation {
  const where = ns ? `namespace ${ns}` : 'the cluster';
  if (ns && inv && !inv.namespaceExists(ns))
    return noteOnly(
      'rotate-credentials',
      `Treat every secret that was in namespace ${ns} as exposed`,
      `The actor listed secrets in ${where} successfully, and a list response carries every secret's data. The cluster (inventory) no longer has namespace ${ns}, so they are gone from it, but the stolen values stay valid at their sources: rotate there the credentials that namespace held, most valuable first.`,
    );
  const scope = ns ? `-n ${ns}` : '-A';
  return remediation(
    'rotate-credentials',
    `Treat every secret in ${where} as exposed`,
    `The actor listed secrets in ${where} successfully, and a list response carries every secret's data. Rotate them at their sources, most valuable first (database and cloud credentials, API keys, TLS private keys). Service-account token secrets are credentials too: delete those of accounts that do not need a long-lived token.`,
    'Rotating many credentials at once can break many workloads; go one owner at a time. Deleting a token secret breaks whatever outside the cluster still uses it.',
    [
      `kubectl get secrets ${scope} --field-selector type!=kubernetes.io/service-account-token`,
      `kubectl get secrets ${scope} --field-selector type=kubernetes.io/service-account-token`,
    ],
  );
}

function actorToken(sa: Ref): Remediation {
  return remediation(
    'rotate-credentials',
    `Revoke the tokens of service account ${refText(sa)}`,
    `The attacker held ${refText(sa)}'s token. A bound token dies with its pod (see the pod deletion), but legacy token secrets never expire: the first command lists those in ${sa.namespace} and the second the ones attached to the account; delete each that belongs to ${sa.name} (annotation kubernetes.io/service-account.name) with kubectl -n ${sa.namespace} delete secret followed by its name.`,
    'Anything outside the cluster that uses a deleted legacy token (CI, dashboards) loses access.',
    [
      `kubectl -n ${sa.namespace} get secrets --field-selector type=kubernetes.io/service-account-token`,
      `kubectl -n ${sa.namespace} get serviceaccount ${sa.name} -o jsonpath='{.secrets[*].name}{"\\n"}'`,
    ],
  );
}

/**
 * The actor's token was used from somewhere its workload is not (root cause's credential source):
 * every token of the account is stolen. Bound tokens outlive their use (a pod's token is valid for
 * up to a year with the API server's extended expiry; a TokenRequest's for what it asked), and only
 * deleting the service account invalidates them all at once: tokens carry its UID, and a new
 * account of the same name has another.
 */
function stolenToken(sa: Ref, source: CredentialSource): Remediation {
  const backup = `serviceaccount-${sa.namespace}-${sa.name}.backup.yaml`;
  return remediation(
    'rotate-credentials',
    `Rotate the tokens of service account ${refText(sa)}`,
    `The token of ${refText(sa)} was used by something other than its workload (${source.detail}), so treat every token of the account as stolen. Deleting a pod ends only that pod's token, and a token minted by TokenRequest lives until it expires; re-creating the service account gives it a new UID, which invalidates every token issued for the old one, bound or legacy. The first commands list the pods that run as it and its legacy token secrets, and back it up; after it is re-created, re-add from the backup what it carried (annotations such as cloud IAM roles, imagePullSecrets) and restart the workloads the first command listed so their pods get new tokens.`,
    `Every pod and external user of ${refText(sa)} (CI systems, dashboards) loses API access until restarted or given a new token; RoleBindings and ClusterRoleBindings name the account, not its UID, and keep applying to the new one.`,
    [
      `kubectl -n ${sa.namespace} get pods --field-selector spec.serviceAccountName=${sa.name}`,
      `kubectl -n ${sa.namespace} get secrets --field-selector type=kubernetes.io/service-account-token`,
      `kubectl -n ${sa.namespace} get serviceaccount ${sa.name} -o yaml > ${backup}`,
      `kubectl -n ${sa.namespace} delete serviceaccount ${sa.name}`,
      `kubectl -n ${sa.namespace} create serviceaccount ${sa.name}`,
    ],
  );
}

/** The actor's service account as the cluster has it: gone (its tokens died with it), or the workloads its pods belong to. */
function accountInCluster(ctx: PlanContext, inv: ClusterInventory, sa: Ref, source: CredentialSource | undefined): Remediation | undefined {
  if (!inv.serviceAccountExists(sa.namespace, sa.name))
    return noteOnly(
      'rotate-credentials',
      `Service account ${refText(sa)} is already gone`,
      `${source ? `The token of ${refText(sa)} was used by something other than its workload (${source.detail}). ` : ''}The cluster (inventory) no longer has service account ${refText(sa)}: every token issued for it, bound or legacy, carries its UID and is no longer accepted, and there is nothing to revoke. A new account of the same name gets a new UID; bindings that name it apply to the new one, so remove those first.`,
    );
  if (!source) return undefined;
  // Its pods' owners, for the restarts after it is re-created.
  const pods = actorPods(ctx);
  const owners = new Map<string, WorkloadOwner>();
  for (const p of pods.ok) {
    const w = livePod(inv, p.namespace, p.name)?.workload ?? inv.workload(p.namespace, p.name);
    if (w) owners.set(workloadText(w), { kind: w.kind, namespace: w.namespace, name: w.name });
  }
  const restarts = [...owners.values()].flatMap((w) => {
    const c = restartCommand(inv, w);
    return c ? [c] : [];
  });
  const r = stolenToken(sa, source);
  return restarts.length
    ? {
        ...r,
        rationale: `${r.rationale} The cluster (inventory) shows the actor's pods belong to ${[...owners.keys()].join(', ')}: the last commands restart ${owners.size === 1 ? 'it' : 'them'}.`,
        commands: [...r.commands, ...restarts],
      }
    : r;
}

export function rotateCredentials(ctx: PlanContext): Remediation[] {
  const read = secretsRead(ctx);
  // A credential used from outside its workload: the account's own token is stolen.
  const credential = ctx.incident.rootCause.credentialSource;
  const lists = entriesWith(ctx, 'secret-list', true);
  const listedNs = checkNames(
    lists
      .filter((e) => !hasTrait(e.kind, 'cluster-wide') && e.target.namespace)
      .map((e) => e.target.namespace!)
      .sort(),
  );
  const out = [
    ...(lists.some((e) => hasTrait(e.kind, 'cluster-wide')) ? [exposedByList(undefined)] : []),
    ...listedNs.ok.map((ns) => exposedByList(ns, ctx.inventory)),
    ...read.ok.map((s) => rotateSecret(ctx, s)),
    ...(ctx.sa
      ? [
          (ctx.inventory ? accountInCluster(ctx, ctx.inventory, ctx.sa, credential) : undefined) ??
            (credential ? stolenToken(ctx.sa, credential) : actorToken(ctx.sa)),
        ]
      : []),
  ];
  const seen = new Set(read.ok.map(refText));
  const unconfirmed = ctx.incident.blastRadius.secrets.map((s) => s.replace(/^secret:/, '')).filter((s) => !seen.has(s));
  const [first, ...rest] = out;
  const withUnconfirmed =
    first && unconfirmed.length > 0
      ? [
          {
            ...first,
            rationale: `${first.rationale} The blast radius also names ${unconfirmed.map(display).join(', ')} with no allowed read in the kept timeline (denied, or trimmed from it): check the audit log before rotating them.`,
          },
          ...rest,
        ]
      : out;
  return withRejections(
    withUnconfirmed,
    [...read.rejected, ...listedNs.rejected, ...rejectedActor(ctx)],
    'rotate-credentials',
    'Rotate the credentials the actor read',
  );
}
