/** Bearer-token authentication for ingest and API routes, compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { sendProblem } from '../../connectors/shared/http.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Middleware that requires `Authorization: Bearer <token>`; a no-op when `token` is undefined (loopback only). */
export function requireBearer(token: string | undefined, realm: string): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  // Comparing fixed-length digests keeps the comparison constant-time whatever the presented length.
  const want = digest(token);
  return (req, res, next) => {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
    if (!m) {
      res.setHeader('WWW-Authenticate', `Bearer realm="${realm}"`);
      sendProblem(res, 401, 'Unauthorized', `send Authorization: Bearer <token> (the ${realm} token)`);
      return;
    }
    if (!timingSafeEqual(digest(m[1]!), want)) {
      res.setHeader('WWW-Authenticate', `Bearer realm="${realm}", error="invalid_token"`);
      sendProblem(res, 401, 'Unauthorized', `the bearer token is not valid for ${realm}`);
      return;
    }
    next();
  };
}
