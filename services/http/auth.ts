/**
 * Authentication for ingest and API routes: bearer tokens compared in constant time, read and write
 * scopes for the API, per-source ingest tokens, and verified client certificates (mutual TLS) for
 * the ingest endpoints when a client CA is configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Request, RequestHandler } from 'express';
import { sendProblem } from '../../platform/http.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The bearer token of a request, if any. */
function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
  return m?.[1];
}

/** True when `presented` equals one of `accepted`; every comparison is constant-time over fixed-length digests. */
function matches(presented: string, accepted: Buffer[]): boolean {
  const d = digest(presented);
  let ok = false;
  for (const a of accepted) ok = timingSafeEqual(d, a) || ok;
  return ok;
}

/** Options of {@link requireAuth}. */
export interface AuthOptions {
  realm: string;
  /** Tokens that may do anything on these routes. */
  write: (string | undefined)[];
  /** Tokens that may only read (GET, HEAD). */
  read?: (string | undefined)[];
  /** Require a client certificate verified against the configured CA (mutual TLS). */
  clientCert?: boolean;
}

/** Middleware enforcing {@link AuthOptions}; with no token and no client CA configured it lets requests through (loopback only). */
export function requireAuth(o: AuthOptions): RequestHandler {
  const write = o.write.filter((t): t is string => !!t).map(digest);
  const read = (o.read ?? []).filter((t): t is string => !!t).map(digest);
  if (!write.length && !read.length && !o.clientCert) return (_req, _res, next) => next();
  return (req, res, next) => {
    if (o.clientCert) {
      const sock = req.socket as TLSSocket;
      if (!sock.encrypted || !sock.authorized) {
        sendProblem(
          res,
          401,
          'Unauthorized',
          `a client certificate signed by the configured CA is required for ${o.realm} (${sock.encrypted ? (sock.authorizationError ?? 'no certificate presented') : 'use https'})`,
        );
        return;
      }
      if (!write.length && !read.length) return next();
    }
    const token = bearer(req);
    if (!token) {
      res.setHeader('WWW-Authenticate', `Bearer realm="${o.realm}"`);
      sendProblem(res, 401, 'Unauthorized', `send Authorization: Bearer <token> (the ${o.realm} token)`);
      return;
    }
    if (matches(token, write)) return next();
    if (matches(token, read)) {
      if (req.method === 'GET' || req.method === 'HEAD') return next();
      sendProblem(res, 403, 'Forbidden', `the read-only ${o.realm} token cannot ${req.method} this resource; use the write token (KUBEVIGIL_API_TOKEN)`);
      return;
    }
    res.setHeader('WWW-Authenticate', `Bearer realm="${o.realm}", error="invalid_token"`);
    sendProblem(res, 401, 'Unauthorized', `the bearer token is not valid for ${o.realm}`);
  };
}
