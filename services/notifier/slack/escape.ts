/**
 * Making attacker-controlled text inert in Slack. Slack reads `<…>` as mentions and links
 * (`<!channel>`, `<@U123>`, `<https://x|label>`) and `&` as the start of an entity, in every text
 * field; mrkdwn also turns `*`, `_`, `~` and backticks into formatting. Pod names, user agents,
 * URIs and log lines all reach messages, so every such string passes through here, and is cut to
 * its limit *after* escaping (an entity is never split).
 */

/** C0/C1 controls (but tab and newline) and bidirectional overrides, which can make text read as something else. */
function invisible(code: number): boolean {
  return (
    (code < 0x20 && code !== 0x09 && code !== 0x0a) ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** Drops invisible characters and turns tabs into spaces. */
function visible(raw: string): string {
  let out = '';
  for (const ch of raw) {
    const code = ch.codePointAt(0)!;
    if (!invisible(code)) out += code === 0x09 ? ' ' : ch;
  }
  return out;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/** A backtick would close a code span or block early; this look-alike cannot. */
const BACKTICK_STANDIN = '\u02cb';

/** Escapes `&`, `<`, `>` and drops control and bidi-override characters; the result is safe in any Slack text field. */
export function escapeText(raw: string): string {
  return visible(raw).replace(/[&<>]/g, (c) => ENTITIES[c]!);
}

/**
 * Escapes `raw` and cuts it so that the escaped text is at most `max` characters, ending with `…`
 * when cut. An entity is never split: a cut either keeps `&amp;` whole or drops it.
 */
export function escapeClipped(raw: string, max: number): string {
  const escaped = escapeText(raw);
  if (escaped.length <= max) return escaped;
  let out = '';
  for (const ch of visible(raw)) {
    const piece = ENTITIES[ch] ?? ch;
    if (out.length + piece.length > max - 1) break;
    out += piece;
  }
  return `${out}…`;
}

/** Text for an inline code span (an identifier: a pod, a secret, a binding): one line, no backticks, escaped, at most `max` characters with the backticks. */
export function inlineCode(raw: string, max = 200): string {
  const flat = raw.replaceAll('`', BACKTICK_STANDIN).replace(/\s+/g, ' ').trim();
  return `\`${escapeClipped(flat === '' ? '-' : flat, Math.max(2, max - 2))}\``;
}

/** A fenced code block (commands, manifests), escaped, with backticks replaced so the fence cannot be closed from inside; at most `max` characters. */
export function codeBlock(raw: string, max: number): string {
  const body = raw.replaceAll('`', BACKTICK_STANDIN).replace(/\n+$/, '');
  return `\`\`\`\n${escapeClipped(body === '' ? '-' : body, Math.max(2, max - 8))}\n\`\`\``;
}

/** A Slack link to a URL we built; `|` and `>` would end the URL, `<` would start another token. */
export function link(url: string, label: string): string {
  const safeUrl = url.replace(/[|<> ]/g, (c) => encodeURIComponent(c));
  return `<${safeUrl}|${escapeText(label).replaceAll('|', '¦')}>`;
}
