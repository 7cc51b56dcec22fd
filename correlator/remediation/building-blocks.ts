/**
 * The building blocks of a suggestion: the remediation record, manifest files, the note on names
 * refused for commands, and words for counts.
 */
import { stringify } from 'yaml';
import type { Remediation, RemediationKind } from '../incident.js';
import type { PlanContext } from './context.js';
import { display } from './names.js';

/** One suggestion. */
export function remediation(kind: RemediationKind, title: string, rationale: string, risk: string, commands: string[], manifests: string[] = []): Remediation {
  return { kind, title, rationale, risk, commands, manifests };
}

/** A manifest file: one or more YAML documents, headed by the file name the commands apply. */
export function manifest(file: string, docs: object[]): string {
  return `# save as ${file}\n${docs.map((d) => stringify(d)).join('---\n')}`;
}

/** Manifest metadata, annotated with the incident the manifest answers. */
export function metadata(ctx: PlanContext, name: string, namespace?: string): Record<string, unknown> {
  return { name, ...(namespace ? { namespace } : {}), annotations: { 'kubevigil.io/incident': ctx.incident.id } };
}

function rejectionNote(rejected: readonly string[]): string {
  return `Left out because they are not valid Kubernetes names and would be unsafe to paste into a shell (the audit data may be forged; find these objects by hand): ${rejected.map(display).join(', ')}.`;
}

/** Adds the rejected names to the first suggestion's rationale, or reports them alone when nothing else was possible. */
export function withRejections(out: Remediation[], rejected: readonly string[], kind: RemediationKind, title: string): Remediation[] {
  if (rejected.length === 0) return out;
  const [first, ...rest] = out;
  if (!first) return [remediation(kind, title, rejectionNote(rejected), 'None: no command is given.', [])];
  return [{ ...first, rationale: `${first.rationale} ${rejectionNote(rejected)}` }, ...rest];
}

/** A suggestion with nothing to run: what the cluster shows makes the action moot (an object already gone), and why. */
export function noteOnly(kind: RemediationKind, title: string, rationale: string): Remediation {
  return remediation(kind, title, rationale, 'None: no command is given.', []);
}

/** `1 request`, `2 requests`. */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
