import { KubevigilError } from '../errors.js';

/** A problem found in a rule or test file: where, what, and how to fix it. */
export interface Problem {
  file: string;
  /** The rule, list, macro or test the problem is in, when there is one. */
  item?: string;
  /** Path inside the item, e.g. `condition.all[2].regex`. */
  field: string;
  message: string;
}

/** Renders a problem as one line: `file: rule-id: field: message`. */
export function formatProblem(p: Problem): string {
  return `${p.file}: ${p.item ? `${p.item}: ` : ''}${p.field}: ${p.message}`;
}

/** Thrown when a rule set cannot be used; carries every problem found, not just the first. */
export class RuleSetError extends KubevigilError {
  constructor(readonly problems: Problem[]) {
    super('RULES_INVALID', `${problems.length} problem(s) in rules:\n${problems.map(formatProblem).join('\n')}`, false);
  }
}
