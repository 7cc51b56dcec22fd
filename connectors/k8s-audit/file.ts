/**
 * File input for audit events: what kube-apiserver's log backend (`--audit-log-path`) writes, one
 * JSON event per line, read once (`kubevigil replay`) or followed as it grows and rotates
 * (`--follow`, for managed clusters whose only audit access is a log file).
 */
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { decodeAuditJson, decodeAuditLines, type DecodedBatch } from './parse.js';

/** A chunk of decoded events and how far through the input it is. */
export interface FileChunk extends DecodedBatch {
  /** Bytes consumed so far (approximate for stdin). */
  bytes: number;
}

/** Largest line kept; a longer one is reported as invalid instead of growing a buffer without bound. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Reads audit events from a stream: JSON lines (the log backend), or a single JSON document
 * (an EventList or array, possibly pretty-printed) when the first line is not a complete value.
 */
export async function* readAuditStream(input: Readable, chunkEvents = 2000): AsyncGenerator<FileChunk> {
  const rl = createInterface({ input, crlfDelay: Infinity });
  let bytes = 0;
  let lineNo = 0;
  let batch: DecodedBatch = { events: [], invalid: [] };
  let whole: string[] | undefined;
  for await (const line of rl) {
    bytes += Buffer.byteLength(line) + 1;
    lineNo++;
    if (whole) {
      whole.push(line);
      continue;
    }
    const t = line.trim();
    if (t === '') continue;
    if (lineNo <= 1 || batch.events.length + batch.invalid.length === 0) {
      // A pretty-printed document: its first line is not JSON on its own.
      if ((t === '{' || t === '[' || !isCompleteJson(t)) && (t.startsWith('{') || t.startsWith('['))) {
        whole = [line];
        continue;
      }
    }
    if (line.length > MAX_LINE_BYTES) {
      batch.invalid.push({ index: batch.events.length + batch.invalid.length, reason: `line ${lineNo}: longer than ${MAX_LINE_BYTES} bytes` });
      continue;
    }
    decodeAuditLines(line, batch, lineNo - 1);
    if (batch.events.length + batch.invalid.length >= chunkEvents) {
      yield { ...batch, bytes };
      batch = { events: [], invalid: [] };
    }
  }
  if (whole) {
    try {
      const decoded = decodeAuditJson(whole.join('\n'));
      batch.events.push(...decoded.events);
      batch.invalid.push(...decoded.invalid);
    } catch (e) {
      batch.invalid.push({ index: 0, reason: (e as Error).message });
    }
  }
  if (batch.events.length || batch.invalid.length || bytes === 0) yield { ...batch, bytes };
}

function isCompleteJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

/** Reads a file (or `-` for stdin) with {@link readAuditStream}. */
export function readAuditFile(path: string, chunkEvents?: number): AsyncGenerator<FileChunk> {
  const input = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1024 * 1024 });
  return readAuditStream(input, chunkEvents);
}

/**
 * Follows a growing log file like `tail -F`: reads what was appended since the last poll, notices
 * rotation (the path now names another file) and truncation (copytruncate), and finishes the old
 * file before moving to the new one. Driven by {@link poll}, so tests need no timers.
 */
export class AuditFileFollower {
  private fh?: FileHandle;
  private ino = -1;
  private pos = 0;
  private partial = '';
  private lineNo = 0;
  // Keeps a multi-byte character split across two reads intact.
  private decoder = new StringDecoder('utf8');
  /** Rotations and truncations noticed. */
  rotations = 0;

  constructor(
    readonly path: string,
    private readonly opts: { fromStart?: boolean } = {},
  ) {}

  /** Reads everything new; returns the complete lines decoded. */
  async poll(): Promise<DecodedBatch> {
    const out: DecodedBatch = { events: [], invalid: [] };
    if (!this.fh && !(await this.openCurrent(this.opts.fromStart ?? true))) return out;
    await this.readToEnd(out);
    let st;
    try {
      st = await stat(this.path);
    } catch {
      return out; // rotated away and not yet re-created: keep the old handle
    }
    if (st.ino !== this.ino) {
      // Rotated: the old file is complete (we just read it to the end); move to the new one.
      await this.close();
      this.rotations++;
      this.flushPartial(out);
      if (await this.openCurrent(true)) await this.readToEnd(out);
    } else if (st.size < this.pos) {
      this.rotations++;
      this.pos = 0;
      this.partial = '';
      this.decoder = new StringDecoder('utf8');
      await this.readToEnd(out);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }

  private async openCurrent(fromStart: boolean): Promise<boolean> {
    try {
      this.fh = await open(this.path, 'r');
    } catch {
      return false;
    }
    const st = await this.fh.stat();
    this.ino = st.ino;
    this.pos = fromStart ? 0 : st.size;
    this.partial = '';
    this.decoder = new StringDecoder('utf8');
    return true;
  }

  private async readToEnd(out: DecodedBatch): Promise<void> {
    if (!this.fh) return;
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.pos);
      if (bytesRead === 0) break;
      this.pos += bytesRead;
      const text = this.partial + this.decoder.write(buf.subarray(0, bytesRead));
      const cut = text.lastIndexOf('\n');
      if (cut < 0) {
        this.partial = text;
      } else {
        const complete = text.slice(0, cut + 1);
        this.partial = text.slice(cut + 1);
        decodeAuditLines(complete, out, this.lineNo);
        this.lineNo += countNewlines(complete);
      }
      if (this.partial.length > MAX_LINE_BYTES) {
        out.invalid.push({ index: out.events.length + out.invalid.length, reason: `line ${this.lineNo + 1}: longer than ${MAX_LINE_BYTES} bytes, skipped` });
        this.partial = '';
      }
    }
  }

  /** A last line without a newline in a rotated file is complete: the writer has moved on. */
  private flushPartial(out: DecodedBatch): void {
    if (this.partial.trim() !== '') decodeAuditLines(this.partial, out, this.lineNo);
    this.partial = '';
    this.lineNo = 0;
  }
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
