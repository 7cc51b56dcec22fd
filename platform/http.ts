/** HTTP helpers shared by the receivers and the API: RFC 9457 problem responses, media types, strict UTF-8. */
import type { Request, Response } from 'express';

/** Sends an `application/problem+json` error that names the problem and the fix. */
export function sendProblem(res: Response, status: number, title: string, detail: string, extra: Record<string, unknown> = {}): void {
  // A refused oversized body is left unread: close the connection rather than keep it waiting for the rest.
  if (status === 413) res.setHeader('Connection', 'close');
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', title, status, detail, ...extra }));
}

/** The media type of a request without parameters, lower-cased ('' when absent). */
export function mediaType(req: Request): string {
  const ct = req.headers['content-type'];
  return typeof ct === 'string' ? (ct.split(';')[0] ?? '').trim().toLowerCase() : '';
}

/** Decodes a UTF-8 body, failing on invalid byte sequences instead of silently replacing them. */
export function decodeUtf8(buf: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return undefined;
  }
}
