/**
 * The browser console (console/, built by `npm run build` into dist/console): its pages and its
 * content-hashed assets, served by every process with the api role, on the same port as the API.
 *
 * What is served is read once, at start: the file names found in dist/console/assets are the only
 * assets (a path is looked up by name, never joined onto the filesystem, so no traversal is
 * possible), and the few page paths the console routes answer with its index.html. The pages hold
 * no data and need no token: the data comes from the authenticated API. Without a build, the page
 * paths answer 503 naming the fix, and the API keeps working.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Router, type Request, type Response } from 'express';
import { sendProblem } from '../../platform/http.js';
import { PACKAGE_ROOT } from '../package-info.js';

/** dist/console under the package root: the same from the sources (tsx) and from dist/services/http. */
export const CONSOLE_DIR = join(PACKAGE_ROOT, 'dist', 'console');

/**
 * The console's policy: scripts, styles, fonts and API calls from this origin only, no inline script
 * or style attribute string, no plugin, no framing, no form posting elsewhere.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The client-side routes (router.ts): each answers index.html, so a reload or a shared link keeps the page. */
const PAGES = ['/', '/incidents', '/incidents/:id', '/signals', '/rules', '/system'];

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};
/** Text worth compressing; images and fonts are compressed already. */
const COMPRESSIBLE = new Set(['.js', '.mjs', '.css', '.html', '.svg', '.json', '.txt']);

/** One file, in memory, with its gzip form when that is smaller. */
export interface ConsoleFile {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
}

/** What {@link loadConsole} found: index.html (absent when the console is not built) and the assets by name. */
export interface ConsoleFiles {
  dir: string;
  index?: ConsoleFile;
  assets: ReadonlyMap<string, ConsoleFile>;
}

function file(path: string): ConsoleFile {
  const body = readFileSync(path);
  const ext = extname(path).toLowerCase();
  const gz = COMPRESSIBLE.has(ext) ? gzipSync(body, { level: 9 }) : undefined;
  return {
    body,
    ...(gz && gz.length < body.length ? { gzip: gz } : {}),
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

/** Reads the built console once: index.html and every regular file directly in assets/. */
export function loadConsole(dir: string = CONSOLE_DIR): ConsoleFiles {
  const indexPath = join(dir, 'index.html');
  if (!existsSync(indexPath)) return { dir, assets: new Map() };
  const assets = new Map<string, ConsoleFile>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir))
    for (const name of readdirSync(assetDir)) {
      const path = join(assetDir, name);
      if (/^[\w.-]+$/.test(name) && !name.startsWith('.') && statSync(path).isFile()) assets.set(name, file(path));
    }
  return { dir, index: file(indexPath), assets };
}

/** Whether the client takes gzip (`Accept-Encoding: gzip`, not refused with q=0). */
function acceptsGzip(req: Request): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}

function securityHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

function send(req: Request, res: Response, f: ConsoleFile, cacheControl: string): void {
  securityHeaders(res);
  res.setHeader('Cache-Control', cacheControl);
  res.setHeader('ETag', f.etag);
  res.setHeader('Content-Type', f.type);
  if (f.gzip) res.setHeader('Vary', 'Accept-Encoding');
  const inm = req.headers['if-none-match'];
  if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === f.etag || t.trim() === `W/${f.etag}`)) {
    res.status(304).end();
    return;
  }
  const gz = f.gzip && acceptsGzip(req);
  if (gz) res.setHeader('Content-Encoding', 'gzip');
  const body = gz ? f.gzip! : f.body;
  res.setHeader('Content-Length', String(body.length));
  res.status(200);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/** The console's routes: GET and HEAD of the pages and of the assets; anything else falls through (to the 404). */
export function consoleRoutes(files: ConsoleFiles = loadConsole()): Router {
  const router = Router({ caseSensitive: true, strict: false });
  router.get('/assets/:file', (req, res, next) => {
    const f = files.assets.get(String(req.params.file));
    if (!f) return next();
    // Content-hashed names: a changed file is a new name, so this one never changes.
    send(req, res, f, 'public, max-age=31536000, immutable');
  });
  router.get(PAGES, (req, res) => {
    if (!files.index) {
      securityHeaders(res);
      res.setHeader('Cache-Control', 'no-store');
      sendProblem(res, 503, 'Service Unavailable', 'the console is not built: run npm run build (the API under /api/v1 works without it)');
      return;
    }
    // Revalidated on every load: a new build's asset names reach the browser at once.
    send(req, res, files.index, 'no-cache');
  });
  return router;
}
