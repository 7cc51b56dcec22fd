/** Signal and incident severities, ordered from least to most severe. */
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

/** A severity level; compare with {@link severityRank}, never as strings. */
export type Severity = (typeof SEVERITIES)[number];

const RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Position of a severity in {@link SEVERITIES} (info = 0 … critical = 4). */
export function severityRank(s: Severity): number {
  return RANK[s];
}

/** True when `value` names a severity. */
export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && Object.hasOwn(RANK, value);
}

/** The more severe of two severities. */
export function maxSeverity(a: Severity, b: Severity): Severity {
  return RANK[a] >= RANK[b] ? a : b;
}
