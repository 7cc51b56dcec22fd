/**
 * Silences from a file (KUBEVIGIL_SILENCES_FILE, issue #15): a YAML or JSON list of silences in the
 * shape of the POST /api/v1/silences body, validated with the same zod schema, plus:
 * - `id` (optional): a UUID chosen by the file's author; absent, one derived from the entry's content
 *   (the same entry keeps the same id across reloads and processes);
 * - `endsAt` (optional here): absent, the silence lasts until it is removed from the file;
 * - `startsAt` (optional): absent, the silence applies at once (listed as starting at the epoch); an entry
 *   whose endsAt has passed is listed as expired (and may be removed from the file);
 * - `createdBy` (optional here): absent, `file:<path>`.
 * The whole file is validated before any of it applies; a problem names the file, the entry index and the field.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { formatProblem, type Problem } from '../correlator/detection/problems.js';
import { KubevigilError } from '../correlator/errors.js';
import { SILENCE_LIMITS, type Silence } from '../correlator/silences.js';
import { PostableSilence } from './api/schemas.js';

/** Thrown at start when the silences file has problems; carries every one. */
export class SilencesFileError extends KubevigilError {
  constructor(readonly problems: Problem[]) {
    super('CONFIG_INVALID', `${problems.length} problem(s) in the silences file:\n${problems.map(formatProblem).join('\n')}`, false);
  }
}

/** What endsAt stands for when a file entry has none: until the entry is removed from the file. */
export const UNTIL_REMOVED = Date.parse('9999-12-31T23:59:59.000Z');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A UUID-shaped id from an entry's content (stable across reloads and processes). */
function derivedId(entry: Record<string, unknown>): string {
  const h = createHash('sha256')
    .update(JSON.stringify(entry, Object.keys(entry).sort()))
    .update(JSON.stringify(entry.matchers))
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Loads and validates the file: the silences, or every problem found (then none apply). */
export function loadSilencesFile(path: string, now = Date.now()): { silences: Silence[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const fail = (field: string, message: string, item?: string) => ({ silences: [], problems: [{ file: path, ...(item ? { item } : {}), field, message }] });
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return fail('(file)', `cannot be read as YAML or JSON: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return { silences: [], problems };
  if (!Array.isArray(doc)) return fail('(file)', 'must be a list of silences (the POST /api/v1/silences body, plus an optional id)');
  if (doc.length > SILENCE_LIMITS.unexpired) return fail('(file)', `holds ${doc.length} silences; at most ${SILENCE_LIMITS.unexpired}`);
  const silences: Silence[] = [];
  const ids = new Map<string, number>();
  const createdBy = `file:${path}`.slice(0, SILENCE_LIMITS.createdBy);
  doc.forEach((raw: unknown, i) => {
    const item = `silences[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push({
        file: path,
        item,
        field: '(entry)',
        message: 'must be a silence object with matchers, comment and optionally id, startsAt, endsAt, createdBy',
      });
      return;
    }
    const { id: rawId, ...rest } = raw as Record<string, unknown>;
    if (rawId !== undefined && (typeof rawId !== 'string' || !UUID.test(rawId))) {
      problems.push({
        file: path,
        item,
        field: 'id',
        message: 'must be a lower-case UUID such as 3f0c5e0a-8d1b-4c52-9a77-2b1f6c0d9e41 (or be left out: one is derived from the content)',
      });
      return;
    }
    // startsAt defaults to the epoch, so an entry whose endsAt has passed is listed as expired, not refused.
    const body = { createdBy, startsAt: '1970-01-01T00:00:00Z', ...rest, endsAt: rest.endsAt ?? new Date(UNTIL_REMOVED).toISOString() };
    const parsed = PostableSilence.safeParse(body);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        problems.push({ file: path, item, field: issue.path.length ? issue.path.join('.') : '(entry)', message: issue.message });
      return;
    }
    const p = parsed.data;
    const id = (rawId as string | undefined) ?? derivedId(raw as Record<string, unknown>);
    const seen = ids.get(id);
    if (seen !== undefined) {
      problems.push({
        file: path,
        item,
        field: 'id',
        message: `${id} is also the id of silences[${seen}]; ids must be unique (identical entries derive the same id)`,
      });
      return;
    }
    ids.set(id, i);
    silences.push({
      id,
      matchers: p.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual ?? true })),
      startsAt: p.startsAt === undefined ? 0 : Date.parse(p.startsAt),
      endsAt: Date.parse(p.endsAt),
      createdBy: p.createdBy,
      comment: p.comment,
      updatedAt: now,
      file: path,
    });
  });
  return problems.length ? { silences: [], problems } : { silences, problems };
}
