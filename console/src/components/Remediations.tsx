/**
 * The proposed remediations: why (rationale), what it costs (risk, marked), each command with a
 * Copy button and each manifest as a downloadable file (a Blob URL, no server round trip) with a
 * collapsible preview. kubevigil applies nothing itself.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { manifestFile } from '../timeline';
import type { Remediation } from '../types';

function CopyCommand({ command }: { command: string }) {
  const ref = useRef<HTMLPreElement>(null);
  const [state, setState] = useState<'idle' | 'copied' | 'selected'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const t = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(t);
  }, [state]);
  const selectText = () => {
    const el = ref.current;
    const sel = window.getSelection();
    if (!el || !sel) return;
    const range = document.createRange();
    range.selectNodeContents(el);
    sel.removeAllRanges();
    sel.addRange(range);
    setState('selected');
  };
  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(command);
      setState('copied');
    } catch {
      selectText(); // no clipboard access (plain http, permissions): select it for Ctrl+C
    }
  };
  return (
    <div class="cmd">
      <pre data-testid="command" ref={ref}>
        <code>{command}</code>
      </pre>
      <button
        type="button"
        class="secondary copy"
        data-testid="copy"
        onClick={() => void copy()}
        aria-label={state === 'idle' ? `Copy command: ${command}` : undefined}
      >
        {state === 'copied' ? 'Copied' : state === 'selected' ? 'Selected: press Ctrl+C' : 'Copy'}
      </button>
    </div>
  );
}

function ManifestFile({ manifest, kind, n }: { manifest: string; kind: string; n: number }) {
  const { filename, text } = manifestFile(manifest, kind, n);
  const url = useMemo(() => URL.createObjectURL(new Blob([text], { type: 'application/yaml' })), [text]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return (
    <div class="manifest">
      <div class="row">
        <a class="button secondary" href={url} download={filename} data-testid="manifest-download">
          ⬇ Download {filename}
        </a>
        <span class="muted">{text.split('\n').length} lines</span>
      </div>
      <details>
        <summary>Preview {filename}</summary>
        <pre class="manifest-text">
          <code>{text}</code>
        </pre>
      </details>
    </div>
  );
}

export function Remediations({ remediations }: { remediations: Remediation[] }) {
  if (!remediations.length) return <p class="muted">No remediation proposed.</p>;
  return (
    <>
      <p class="muted">Proposals only: kubevigil applies nothing. Read the rationale and the risk, run the commands in order.</p>
      <ol class="remediations">
        {remediations.map((r, i) => (
          <li key={`${r.kind}-${i}`} data-testid="remediation" class="remediation panel">
            <h3>
              <span class="rem-n">{i + 1}.</span> {r.title}
            </h3>
            <div class="row rem-meta">
              <span class="chip mono">{r.kind}</span>
              {r.basis ? <span class="muted">basis: {r.basis}</span> : null}
            </div>
            <p class="rem-why">
              <strong>Why: </strong>
              {r.rationale}
            </p>
            <div class="risk" role="note" aria-label="Risk">
              <strong class="risk-tag">⚠ Risk</strong> {r.risk}
            </div>
            {r.commands.length ? (
              <div class="cmds">
                {r.commands.map((c, j) => (
                  <CopyCommand key={j} command={c} />
                ))}
              </div>
            ) : null}
            {r.manifests.map((m, j) => (
              <ManifestFile key={j} manifest={m} kind={r.kind} n={j} />
            ))}
          </li>
        ))}
      </ol>
    </>
  );
}
