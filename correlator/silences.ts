/**
 * Silences, with Alertmanager's semantics: a silence is a set of matchers and a time window; a
 * signal every matcher of an active silence matches is silenced. A silenced signal is kept and
 * counted, but opens, escalates and notifies nothing (see `IncidentManager.silencer`).
 *
 * Matcher names are the signal's `actor` (entity key), `rule` (rule id), `kind`, `namespace` (the
 * target's), `source`, `severity`, `cluster`, and `attributes.<name>` for any signal attribute. A
 * value the signal does not have is the empty string, as a missing label is in Alertmanager, and a
 * regex is anchored: `^(?:re)$`. Pure: the time is always given.
 */
import type { Signal } from './signal.js';

/** One matcher, as Alertmanager's API v2 writes it. */
export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  /** false: the matcher holds when the value does NOT match (`!=`, `!~`). */
  isEqual: boolean;
}

/** A silence as stored. Times are ms since the epoch. */
export interface Silence {
  id: string;
  matchers: SilenceMatcher[];
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
  updatedAt: number;
  /** Set on silences read from KUBEVIGIL_SILENCES_FILE: the file (they cannot be expired through the API). */
  file?: string;
}

export type SilenceState = 'pending' | 'active' | 'expired';

/** The matcher names besides `attributes.<name>`. */
export const SILENCE_FIELDS = ['actor', 'rule', 'kind', 'namespace', 'source', 'severity', 'cluster'] as const;

/** Bounds on one silence and on the set (an API with the write token still must not grow without limit). */
export const SILENCE_LIMITS = {
  matchers: 16,
  name: 128,
  value: 1024,
  comment: 1000,
  createdBy: 200,
  /** Silences that are not expired yet. */
  unexpired: 1000,
  /** Expired silences kept for history (the most recently ended). */
  expiredKept: 1000,
  /** Expired silences older than this are dropped. */
  expiredRetentionMs: 30 * 86_400_000,
};

/** Where a silence stands at `now`. */
export function silenceState(s: Pick<Silence, 'startsAt' | 'endsAt'>, now: number): SilenceState {
  if (now >= s.endsAt) return 'expired';
  return now < s.startsAt ? 'pending' : 'active';
}

/** The value a matcher name reads from a signal; absent is "". */
export function signalValue(s: Signal, name: string): string {
  switch (name) {
    case 'actor':
      return s.actor.key;
    case 'rule':
      return s.rule.id;
    case 'kind':
      return s.kind;
    case 'namespace':
      return s.target.namespace ?? '';
    case 'source':
      return s.source;
    case 'severity':
      return s.severity;
    case 'cluster':
      return s.cluster ?? '';
    default:
      return name.startsWith('attributes.') ? (s.attributes[name.slice('attributes.'.length)] ?? '') : '';
  }
}

/** Why a matcher name cannot be used, or undefined. */
export function matcherNameProblem(name: string): string | undefined {
  if ((SILENCE_FIELDS as readonly string[]).includes(name)) return undefined;
  if (/^attributes\.[A-Za-z0-9_.-]{1,100}$/.test(name)) return undefined;
  return `is not a matcher name; use one of ${SILENCE_FIELDS.join(', ')}, or attributes.<name> for a signal attribute (attributes.${name.replace(/^attributes\./, '') || 'binding'})`;
}

/** A matcher made into a predicate on a value. */
function compileMatcher(m: SilenceMatcher): (value: string) => boolean {
  let test: (v: string) => boolean;
  if (m.isRegex) {
    const re = new RegExp(`^(?:${m.value})$`);
    test = (v) => re.test(v);
  } else test = (v) => v === m.value;
  return m.isEqual ? test : (v) => !test(v);
}

/** Why a regex matcher's value is not a regular expression, or undefined. */
export function regexProblem(value: string): string | undefined {
  try {
    new RegExp(`^(?:${value})$`);
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^Invalid regular expression: /, '');
  }
}

/**
 * Refuses matchers that would silence every signal, as Alertmanager does: at least one matcher must
 * not match the empty value (`actor=~".*"` or `rule!="x"` alone match everything).
 */
export function matchesEverything(matchers: readonly SilenceMatcher[]): boolean {
  return matchers.every((m) => compileMatcher(m)(''));
}

/** A silence ready to test signals. */
export interface CompiledSilence {
  silence: Silence;
  matches(s: Signal): boolean;
}

/** Compiles a silence once; throws on a regex that does not compile (validated before storing). */
export function compileSilence(silence: Silence): CompiledSilence {
  const tests = silence.matchers.map((m) => ({ name: m.name, test: compileMatcher(m) }));
  return { silence, matches: (s) => tests.every((t) => t.test(signalValue(s, t.name))) };
}

/** A set of compiled silences; the first active one that matches a signal silences it. */
export class SilenceSet {
  private compiled: CompiledSilence[] = [];

  /** Replaces the set; silences whose regexes do not compile (another version stored them) are skipped. */
  replace(silences: readonly Silence[], now: number): void {
    const out: CompiledSilence[] = [];
    for (const s of silences) {
      if (silenceState(s, now) === 'expired') continue;
      try {
        out.push(compileSilence(s));
      } catch {
        // Skipped: validation at creation refuses these.
      }
    }
    this.compiled = out;
  }

  /** The id of an active silence matching the signal at `now`, or undefined. */
  match(s: Signal, now: number): string | undefined {
    for (const c of this.compiled) if (silenceState(c.silence, now) === 'active' && c.matches(s)) return c.silence.id;
    return undefined;
  }

  /** How many silences the set holds (pending and active). */
  get size(): number {
    return this.compiled.length;
  }

  /** The active silences at `now`. */
  active(now: number): number {
    return this.compiled.filter((c) => silenceState(c.silence, now) === 'active').length;
  }
}

/**
 * Which silences to drop from history: expired ones that ended before `now - retention`, and the
 * oldest expired ones beyond `keep`.
 */
export function silencesToPrune(
  silences: readonly Silence[],
  now: number,
  keep = SILENCE_LIMITS.expiredKept,
  retentionMs = SILENCE_LIMITS.expiredRetentionMs,
): string[] {
  const expired = silences.filter((s) => silenceState(s, now) === 'expired').sort((a, b) => b.endsAt - a.endsAt);
  return expired.filter((s, i) => i >= keep || s.endsAt < now - retentionMs).map((s) => s.id);
}
