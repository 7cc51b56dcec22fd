/**
 * Loki stream labels: parsing the Prometheus label-set text a protobuf push carries
 * (`{app="web", namespace="shop"}`), validating label maps from JSON, and the canonical text form
 * used in event keys. Limits follow Loki's defaults loosely: generous enough for every real
 * shipper, small enough that a hostile sender cannot make one stream cost megabytes.
 */

/** Limits on one stream's labels and one entry's structured metadata. */
export const LABEL_LIMITS = { maxLabels: 32, maxNameLength: 1024, maxValueLength: 2048, maxMetadataPairs: 128, maxMetadataBytes: 64 * 1024 } as const;

const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Checks a label map; returns a problem (naming the label) or undefined. */
export function checkLabels(labels: Record<string, string>): string | undefined {
  const names = Object.keys(labels);
  if (names.length === 0) return 'at least one label pair is required per stream';
  if (names.length > LABEL_LIMITS.maxLabels) return `${names.length} labels exceed the limit of ${LABEL_LIMITS.maxLabels} per stream`;
  for (const n of names) {
    if (!NAME.test(n) || n.length > LABEL_LIMITS.maxNameLength)
      return `label name ${JSON.stringify(n.slice(0, 80))} is invalid: use [a-zA-Z_][a-zA-Z0-9_]*, at most ${LABEL_LIMITS.maxNameLength} characters`;
    if (labels[n]!.length > LABEL_LIMITS.maxValueLength)
      return `label ${n}: value is ${labels[n]!.length} characters, more than ${LABEL_LIMITS.maxValueLength}`;
  }
  return undefined;
}

/** Parses Prometheus label-set text (`{a="b", c="d"}`); throws an Error naming the position on bad input. */
export function parseLabelSet(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const s = text.trim();
  const fail = (at: number, what: string): never => {
    throw new Error(`labels ${JSON.stringify(s.slice(0, 120))}: ${what} at character ${at + 1}`);
  };
  if (s[0] !== '{') fail(0, 'expected "{"');
  let i = 1;
  const ws = () => {
    while (s[i] === ' ' || s[i] === '\t' || s[i] === '\n') i++;
  };
  ws();
  if (s[i] === '}') i++;
  else
    for (;;) {
      ws();
      const start = i;
      while (i < s.length && /[a-zA-Z0-9_]/.test(s[i]!)) i++;
      const name = s.slice(start, i);
      if (!NAME.test(name)) fail(start, 'expected a label name');
      ws();
      if (s[i] !== '=') fail(i, 'expected "="');
      i++;
      ws();
      if (s[i] !== '"') fail(i, 'expected a quoted value');
      i++;
      let value = '';
      for (;;) {
        if (i >= s.length) fail(i, 'unterminated value');
        const c = s[i]!;
        if (c === '"') break;
        if (c === '\\') {
          const e = s[i + 1];
          value += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      if (Object.hasOwn(out, name)) fail(start, `duplicate label ${name}`);
      out[name] = value;
      ws();
      if (s[i] === ',') {
        i++;
        ws();
        if (s[i] === '}') {
          i++;
          break;
        }
        continue;
      }
      if (s[i] === '}') {
        i++;
        break;
      }
      fail(i, 'expected "," or "}"');
    }
  ws();
  if (i !== s.length) fail(i, 'unexpected text after "}"');
  return { ...out };
}

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** The canonical text of a label set: names sorted, values escaped (`{a="1", b="2"}`). */
export function formatLabelSet(labels: Readonly<Record<string, string>>): string {
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escape(labels[k]!)}"`)
    .join(', ')}}`;
}
