/** Text for a terminal: attacker-controlled strings must not move the cursor, recolor or hide text. */
// Attacker-controlled text must not drive the terminal: strip control characters and escapes.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Makes a string safe to print on a terminal, cut to `width`. */
export function terminalSafe(s: string, width: number): string {
  const clean = s.replace(CONTROL, '�');
  return clean.length > width ? `${clean.slice(0, Math.max(0, width - 1))}…` : clean;
}
