/**
 * `kubevigil silence add|list|expire`: silences through a running kubevigil's API, with matchers
 * written as amtool writes them (`actor=sa:ci/deployer`, `rule=~"k8s-rbac-.*"`, `severity!=critical`).
 */
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.js';

/** What the commands use of program.ts's Io (not imported: program.ts imports this module). */
interface Io {
  out: (line: string) => void;
  env: NodeJS.ProcessEnv;
}
type Outcome = number | 'running';

interface Remote {
  url: string;
  token?: string;
}

export const SILENCE_SYNOPSIS = [
  'kubevigil silence add --matcher M… --comment C [--duration D | --end T] [--start T] [--author A] [--url U] [--token T]',
  'kubevigil silence list [--format table|json] [--url U] [--token T]',
  'kubevigil silence expire ID… [--url U] [--token T]',
];

const DURATION = /^([1-9][0-9]{0,5})(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `name=value`, `name!=value`, `name=~re`, `name!~re`; a value may be double-quoted. */
export function parseMatcher(text: string): { name: string; value: string; isRegex: boolean; isEqual: boolean } {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(text);
  if (!m)
    throw new UsageError(`--matcher ${text} is not a matcher; write name=value, name!=value, name=~regex or name!~regex (actor=sa:ci/deployer)`, 'silence add');
  const [, name, op, raw] = m as unknown as [string, string, string, string];
  let value = raw;
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
    try {
      value = JSON.parse(raw) as string;
    } catch {
      throw new UsageError(`--matcher ${text}: the quoted value is not a valid string`, 'silence add');
    }
  }
  return { name, value, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' };
}

async function request(r: Remote, method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${r.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(r.token ? { authorization: `Bearer ${r.token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach kubevigil at ${r.url} (${cause?.code ?? cause?.message ?? (e as Error).message}); check --url (KUBEVIGIL_URL)`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const detail = (json as { detail?: string } | undefined)?.detail ?? text.slice(0, 200);
    const hint = res.status === 401 || res.status === 403 ? '; pass the API token with --token or KUBEVIGIL_API_TOKEN' : '';
    throw new CliError(`${method} ${path} answered ${res.status}: ${detail}${hint}`);
  }
  return json;
}

function time(flag: string, v: string): number {
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new UsageError(`${flag} ${v} is not a time; use RFC 3339 (2026-12-06T15:00:00Z)`, 'silence add');
  return t;
}

/** Registers `silence` and its subcommands on the program. */
export function addSilenceCommand(program: Command, io: Io, done: (o: Outcome) => void): void {
  const remote = (o: { url?: string; token?: string }): Remote => ({
    url: o.url ?? io.env.KUBEVIGIL_URL ?? 'http://127.0.0.1:8080',
    ...((o.token ?? io.env.KUBEVIGIL_API_TOKEN) ? { token: o.token ?? io.env.KUBEVIGIL_API_TOKEN } : {}),
  });
  const withRemote = (c: Command) =>
    c
      .option('--url <U>', 'the kubevigil API (KUBEVIGIL_URL; default http://127.0.0.1:8080)')
      .option('--token <T>', 'the API token (KUBEVIGIL_API_TOKEN); the read token lists only');
  const silence = program
    .command('silence')
    .summary('add, list and expire silences on a running kubevigil (Alertmanager semantics)')
    .description('Silenced signals are kept and counted, but open, escalate and notify nothing. Talks to the API of a running kubevigil.')
    .usage('add|list|expire …');

  withRemote(
    silence
      .command('add')
      .description(
        'Create a silence; print its id. Matcher names: actor, rule, kind, namespace, source, severity, cluster, attributes.<name>. ' +
          'Every matcher must hold; regexes are anchored.',
      )
      .usage(SILENCE_SYNOPSIS[0]!.slice('kubevigil silence add '.length))
      .requiredOption(
        '--matcher <M>',
        'name=value, name!=value, name=~regex or name!~regex (repeatable)',
        (v: string, prev: ReturnType<typeof parseMatcher>[] = []) => [...prev, parseMatcher(v)],
      )
      .requiredOption('--comment <C>', 'why these signals are silenced')
      .option('--duration <D>', 'how long from the start (30m, 12h, 7d; default 1h)')
      .option('--start <T>', 'when it starts (RFC 3339; default now)')
      .option('--end <T>', 'when it ends (RFC 3339), instead of --duration')
      .option('--author <A>', 'who creates it (default $USER)'),
  ).action(
    async (o: {
      matcher: ReturnType<typeof parseMatcher>[];
      comment: string;
      duration?: string;
      start?: string;
      end?: string;
      author?: string;
      url?: string;
      token?: string;
    }) => {
      if (o.duration && o.end) throw new UsageError('give --duration or --end, not both', 'silence add');
      const d = DURATION.exec(o.duration ?? '1h');
      if (!d) throw new UsageError(`--duration ${o.duration} is not a duration; use 30m, 12h or 7d`, 'silence add');
      const startsAt = o.start ? time('--start', o.start) : Date.now();
      const endsAt = o.end ? time('--end', o.end) : startsAt + Number(d[1]) * UNIT_MS[d[2] as keyof typeof UNIT_MS];
      const body = {
        matchers: o.matcher,
        startsAt: new Date(startsAt).toISOString(),
        endsAt: new Date(endsAt).toISOString(),
        createdBy: o.author ?? io.env.USER ?? 'kubevigil-cli',
        comment: o.comment,
      };
      const { silenceID } = (await request(remote(o), 'POST', '/api/v1/silences', body)) as { silenceID: string };
      io.out(silenceID);
      done(0);
    },
  );

  withRemote(
    silence
      .command('list')
      .description('List silences: active, then pending, then expired.')
      .usage(SILENCE_SYNOPSIS[1]!.slice('kubevigil silence list '.length))
      .option('--format <F>', 'table or json (default table)', (v: string) => {
        if (v !== 'table' && v !== 'json') throw new UsageError(`--format ${v} is not known; use table or json`, 'silence list');
        return v;
      }),
  ).action(async (o: { format?: string; url?: string; token?: string }) => {
    const { items } = (await request(remote(o), 'GET', '/api/v1/silences')) as {
      items: { id: string; status: { state: string }; endsAt: string; createdBy: string; comment: string; matchers: ReturnType<typeof parseMatcher>[] }[];
    };
    if (o.format === 'json') for (const s of items) io.out(JSON.stringify(s));
    else {
      io.out(`${'ID'.padEnd(37)}${'STATE'.padEnd(9)}${'ENDS'.padEnd(25)}${'CREATED BY'.padEnd(16)}MATCHERS  COMMENT`);
      for (const s of items) {
        const matchers = s.matchers
          .map((m) => `${m.name}${m.isRegex ? (m.isEqual ? '=~' : '!~') : m.isEqual ? '=' : '!='}${JSON.stringify(m.value)}`)
          .join(' ');
        io.out(
          `${s.id.padEnd(37)}${s.status.state.padEnd(9)}${s.endsAt.padEnd(25)}${s.createdBy.slice(0, 15).padEnd(16)}${matchers}  ${s.comment.slice(0, 80)}`,
        );
      }
    }
    done(0);
  });

  withRemote(
    silence
      .command('expire')
      .description('Expire silences now (they are kept, expired, for history).')
      .usage(SILENCE_SYNOPSIS[2]!.slice('kubevigil silence expire '.length)),
  )
    .argument('<ID...>', 'silence ids, as silence add and list print them')
    .action(async (ids: string[], o: { url?: string; token?: string }) => {
      for (const id of ids) {
        await request(remote(o), 'DELETE', `/api/v1/silences/${encodeURIComponent(id)}`);
        io.out(`expired ${id}`);
      }
      done(0);
    });
}
