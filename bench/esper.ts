/**
 * Case "esper": the correlation pack through kubevigil's correlation engine and through Esper (the
 * Java complex-event-processing engine) on the same signal stream, in the same run.
 *
 * The stream is {@link correlationSignals} (the one the "correlation" case times), written once to
 * a TSV file of the fields the rules read; the Java side (bench/esper/, built with Maven) parses it
 * into beans before timing. Every correlation is translated to EPL by {@link correlationEpl} (one
 * translation, documented in bench/esper/README.md). Both sides time only the feeding: kubevigil
 * `engine.process(signal)` over built Signal objects, Esper `sendEventBean` plus `advanceTime` (the
 * clock follows event time). Each shape runs alone (only its rules, on both sides), then the pack.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { CompiledCorrelation } from '../correlator/correlation/rules.js';
import type { Signal } from '../correlator/signal.js';
import { median } from './shared.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PROJECT = join(HERE, 'esper');
const JAR = join(PROJECT, 'target', 'esper-bench.jar');

/**
 * The correlation bench stream: `m` signals from `actors` actors, 200 a second of event time. A
 * realistic mix: most actors only ever raise low-severity observations of one or two kinds (their
 * own secrets, the odd denial); 1% are compromised and walk an attack path.
 */
export async function correlationSignals(m = Number(process.env.BENCH_SIGNALS ?? 400_000), actors = 20_000): Promise<Signal[]> {
  return [...(await correlationSignalStream(m, actors))];
}

/**
 * The stream of {@link correlationSignals}, made one signal at a time as it is read (the same
 * signals): for a consumer that must not hold the whole stream, such as the memory case.
 */
export async function correlationSignalStream(m = Number(process.env.BENCH_SIGNALS ?? 400_000), actors = 20_000): Promise<Generator<Signal, void, undefined>> {
  const { signalFromSpec } = await import('../correlator/correlation/rule-tests.js');
  const { rng } = await import('../connectors/k8s-audit/synth.js');
  const r = rng(3);
  const noise = ['secret.read', 'secret.read', 'secret.list', 'rbac.denied', 'pod.default_sa', 'admission.psa_violation'];
  const attack = [
    'rbac.permission_enumeration',
    'secret.list_cluster_wide',
    'secret.read_cross_namespace',
    'rbac.denied',
    'pod.exec',
    'rbac.escalation_attempt',
    'admission.denied',
    'mtls.failed',
  ];
  return (function* () {
    for (let i = 0; i < m; i++) {
      const a = Math.floor(r() * actors);
      const bad = a % 100 === 0;
      const kind = bad ? attack[Math.floor(r() * attack.length)]! : noise[(a + Math.floor(r() * 2)) % noise.length]!;
      const ns = `ns-${a % 300}`;
      yield signalFromSpec(
        {
          at: `${Math.floor(i / 200)}s`,
          kind,
          actor: `sa:${ns}/sa-${a}`,
          severity: kind === 'secret.list_cluster_wide' || kind === 'secret.read_cross_namespace' ? 'high' : 'low',
          outcome: kind === 'rbac.denied' || kind === 'pod.exec' || kind === 'rbac.escalation_attempt' || kind === 'admission.denied' ? 'denied' : 'allowed',
          target: {
            namespace: bad ? `ns-${Math.floor(r() * 40)}` : ns,
            resource: bad ? ['pods', 'secrets', 'nodes', 'configmaps'][Math.floor(r() * 4)] : 'secrets',
          },
        },
        i,
        [],
      )!;
    }
  })();
}

/** Signal field paths the rules may read → columns of the TSV file and properties of the Java bean. */
const COLUMNS: [path: string, property: string, get: (s: Signal) => unknown][] = [
  ['eventTime', 'ts', (s) => s.eventTime],
  ['actor.key', 'actor', (s) => s.actor.key],
  ['kind', 'kind', (s) => s.kind],
  ['rule.id', 'rule', (s) => s.rule.id],
  ['outcome', 'outcome', (s) => s.outcome],
  ['severity', 'severity', (s) => s.severity],
  ['target.namespace', 'ns', (s) => s.target.namespace],
  ['target.resource', 'resource', (s) => s.target.resource],
  ['target.name', 'name', (s) => s.target.name],
];

/**
 * The stream with one string per distinct value in the fields the rules read, as the Java side
 * has it (EsperBench interns every field as it reads the TSV): both engines then find an actor's
 * windows by a hash lookup that compares references, not characters. Signals as a parser makes
 * them carry a copy of every value; sharing changes kubevigil's pack rate by 5–7% (see
 * bench/esper/README.md). Fields a signal does not have stay absent.
 */
export function shareStrings(signals: readonly Signal[]): void {
  const known = new Map<string, string>();
  const one = <T>(v: T): T => {
    if (typeof v !== 'string') return v;
    const k = known.get(v);
    if (k !== undefined) return k as T;
    known.set(v, v);
    return v;
  };
  for (const s of signals) {
    s.actor.key = one(s.actor.key);
    s.kind = one(s.kind);
    s.rule.id = one(s.rule.id);
    s.outcome = one(s.outcome);
    s.severity = one(s.severity);
    const t = s.target;
    if (t.namespace !== undefined) t.namespace = one(t.namespace);
    if (t.resource !== undefined) t.resource = one(t.resource);
    if (t.name !== undefined) t.name = one(t.name);
  }
}

/** The stream as TSV (see EsperBench.java), in event-time order. */
export function signalsTsv(signals: readonly Signal[]): string {
  const clean = (v: unknown) => (v === undefined || v === null ? '' : String(v).replace(/[\t\n\r]/g, ' '));
  return signals.map((s) => COLUMNS.map(([, , get]) => clean(get(s))).join('\t')).join('\n') + '\n';
}

function property(path: string, id: string): string {
  const c = COLUMNS.find(([p]) => p === path);
  if (!c) throw new Error(`${id}: field ${path} has no column in the Esper bench; add it to COLUMNS and Signal.java`);
  return c[1];
}

const lit = (v: unknown): string => {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
};

/** A `where:` condition (the subset the pack uses: field eq/in/exists, all/any/not) as an EPL expression. */
export function whereEpl(node: unknown, id: string): string {
  if (typeof node !== 'object' || node === null) throw new Error(`${id}: where must be a mapping`);
  const n = node as Record<string, unknown>;
  if (Array.isArray(n.all)) return `(${n.all.map((k) => whereEpl(k, id)).join(' and ')})`;
  if (Array.isArray(n.any)) return `(${n.any.map((k) => whereEpl(k, id)).join(' or ')})`;
  if ('not' in n) return `not (${whereEpl(n.not, id)})`;
  if (typeof n.field !== 'string') throw new Error(`${id}: where ${JSON.stringify(node)} is not translated to EPL`);
  const p = property(n.field, id);
  const ops = Object.keys(n).filter((k) => k !== 'field');
  if (ops.length !== 1) throw new Error(`${id}: where ${JSON.stringify(node)} is not translated to EPL`);
  const op = ops[0]!;
  const v = n[op];
  if (op === 'eq') return Array.isArray(v) ? `${p} in (${v.map(lit).join(', ')})` : `${p} = ${lit(v)}`;
  if (op === 'in' && Array.isArray(v)) return `${p} in (${v.map(lit).join(', ')})`;
  if (op === 'exists') return v ? `${p} is not null` : `${p} is null`;
  throw new Error(`${id}: where operator ${op} is not translated to EPL`);
}

const OPS = { gt: '>', gte: '>=', lt: '<', lte: '<=', eq: '=' } as const;
const stream = (prefix: string, id: string) => `${prefix}_${id.replace(/[^A-Za-z0-9]/g, '_')}`;

/** How ordered sequences are translated: one pattern over all actors, or a pattern per actor in a partitioned context. */
export type SequenceMode = 'pattern' | 'context';

/**
 * The EPL module running `correlations` (see bench/esper/README.md for the mapping). `raw` gives
 * each correlation's YAML mapping (for `where:`, which compiled rules only hold as a function).
 * References to correlations not in `correlations` are declared but never fed, as the engine does.
 */
export function correlationEpl(
  correlations: readonly CompiledCorrelation[],
  raw: ReadonlyMap<string, Record<string, unknown>>,
  sequence: SequenceMode,
): string {
  const present = new Set(correlations.map((c) => c.id));
  const referenced = new Set<string>();
  for (const c of correlations) c.refs.forEach((r, j) => c.refKinds[j] === 'correlation' && referenced.add(r));
  const out: string[] = [];
  for (const id of [...referenced].sort()) out.push(`create schema ${stream('F', id)}(actor string, ts long, n long);`);
  for (const c of correlations) {
    const id = c.id;
    if (c.groupBy.length !== 1 || c.groupBy[0]!.name !== 'actor.key' || c.groupBy[0]!.aliased)
      throw new Error(`${id}: only correlations grouped by the actor are translated to EPL`);
    const where = raw.get(id)?.where === undefined ? undefined : whereEpl(raw.get(id)!.where, id);
    const span = c.timespanMs;
    const into = referenced.has(id) ? `insert into ${stream('F', id)} ` : '';
    // Engine: after a firing the group stays quiet for one timespan.
    const quiet = `output first every ${span} milliseconds`;
    const signalRefs = c.refs.map((r, j) => ({ r, j, k: c.refKinds[j]! })).filter((x) => x.k !== 'correlation');
    const corrRefs = c.refs.map((r, j) => ({ r, j, k: c.refKinds[j]! })).filter((x) => x.k === 'correlation');
    const refTest = (x: { r: string; k: string }) => `${x.k === 'kind' ? 'kind' : 'rule'} = ${lit(x.r)}`;
    const signalFilter = () => {
      const kinds = signalRefs.filter((x) => x.k === 'kind').map((x) => lit(x.r));
      const rules = signalRefs.filter((x) => x.k === 'rule').map((x) => lit(x.r));
      const oneOf = (p: string, vs: string[]) => (vs.length === 1 ? `${p} = ${vs[0]}` : `${p} in (${vs.join(', ')})`);
      const parts = [...(kinds.length ? [oneOf('kind', kinds)] : []), ...(rules.length ? [oneOf('rule', rules)] : [])];
      const refs = parts.length > 1 ? `(${parts.join(' or ')})` : parts[0]!;
      return where ? `${refs}, ${where}` : refs;
    };
    if (c.type === 'temporal_ordered') {
      // Every occurrence of the first reference starts a thread that waits, within the timespan,
      // for the others in order from the same actor.
      const filter = (x: { r: string; j: number; k: string }, first: boolean) => {
        const actor = first || sequence === 'context' ? [] : ['actor = r0.actor'];
        if (x.k === 'correlation') {
          if (where) throw new Error(`${id}: where on a correlation of correlations is not translated to EPL`);
          return `r${x.j}=${stream('F', x.r)}${actor.length ? `(${actor.join(', ')})` : ''}`;
        }
        return `r${x.j}=Signal(${[refTest(x), ...(where ? [where] : []), ...actor].join(', ')})`;
      };
      const all = c.refs.map((r, j) => ({ r, j, k: c.refKinds[j]! }));
      const rest = all
        .slice(1)
        .map((x) => filter(x, false))
        .join(' -> ');
      const pattern = `every ${filter(all[0]!, true)} -> (${rest} where timer:within(${span + 1} milliseconds))`;
      if (sequence === 'context') {
        const ctx = stream('ByActor', id);
        const froms = [...(signalRefs.length ? [`actor from Signal(${signalFilter()})`] : []), ...corrRefs.map((x) => `actor from ${stream('F', x.r)}`)];
        out.push(`create context ${ctx} partition by ${froms.join(', ')};`);
        out.push(`@name('c:${id}') context ${ctx} ${into}select r0.actor as actor, r${c.refs.length - 1}.ts as ts from pattern [${pattern}] ${quiet};`);
      } else {
        // group by + an aggregate: output first applies per actor.
        out.push(
          `@name('c:${id}') ${into}select r0.actor as actor, r${c.refs.length - 1}.ts as ts, count(*) as n from pattern [${pattern}] group by r0.actor ${quiet};`,
        );
      }
      continue;
    }
    // Counting shapes: a time window of one timespan (inclusive: the engine keeps t >= now - span),
    // aggregated per actor, checked when a signal arrives.
    let from: string;
    let refExpr = 'ref';
    if (corrRefs.length === 0) {
      from = `Signal(${signalFilter()})`;
      refExpr = `case ${signalRefs.map((x) => `when ${refTest(x)} then ${x.j}`).join(' ')} end`;
    } else {
      // References to other correlations: one input stream of (actor, reference index).
      if (c.type === 'value_count') throw new Error(`${id}: value_count over correlations is not translated to EPL`);
      if (where) throw new Error(`${id}: where on a correlation of correlations is not translated to EPL`);
      from = stream('In', id);
      out.push(`create schema ${from}(actor string, ts long, ref int);`);
      if (signalRefs.length)
        out.push(
          `insert into ${from} select actor, ts, case ${signalRefs.map((x) => `when ${refTest(x)} then ${x.j}`).join(' ')} end as ref from Signal(${signalFilter()});`,
        );
      for (const x of corrRefs) if (present.has(x.r)) out.push(`insert into ${from} select actor, ts, ${x.j} as ref from ${stream('F', x.r)};`);
    }
    const win = `#groupwin(actor)#ext_timed(ts, ${span + 1} milliseconds)`;
    const measure =
      c.type === 'event_count'
        ? 'count(*)'
        : c.type === 'value_count'
          ? `count(distinct ${property(String(raw.get(id)?.field), id)})`
          : `count(distinct ${refExpr})`;
    out.push(
      `@name('c:${id}') ${into}select actor, ts, ${measure} as n from ${from}${win} group by actor having ${measure} ${OPS[c.condition.op]} ${c.condition.value} ${quiet};`,
    );
  }
  return out.join('\n') + '\n';
}

/** Builds the Java side when its jar is missing or older than its sources: offline first, then online. */
function ensureJar(): void {
  const newest = (p: string): number => {
    const st = statSync(p);
    if (!st.isDirectory()) return st.mtimeMs;
    return Math.max(0, ...readdirSync(p).map((f) => newest(join(p, f))));
  };
  let jar = 0;
  try {
    jar = statSync(JAR).mtimeMs;
  } catch {
    // not built yet
  }
  if (jar >= Math.max(newest(join(PROJECT, 'pom.xml')), newest(join(PROJECT, 'src')))) return;
  for (const args of [
    ['-q', '-B', '-o', 'package'],
    ['-q', '-B', 'package'],
  ]) {
    console.log(`  building bench/esper: mvn ${args.join(' ')}`);
    const r = spawnSync('mvn', args, { cwd: PROJECT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status === 0) return;
  }
  throw new Error('could not build bench/esper (mvn package failed); see above');
}

const SHAPES = ['event_count', 'value_count', 'temporal', 'temporal_ordered'] as const;

/** The Java side, driven one round at a time (see EsperBench.java). */
function startEsper(args: string[]): {
  ready: Promise<void>;
  round: (suite: string) => Promise<{ seconds: number; firings: Record<string, number> }>;
  quit: () => void;
} {
  const child = spawn('java', ['-Xmx2g', '-jar', JAR, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  const exited = new Promise<never>((_, reject) => child.on('exit', (code) => reject(new Error(`esper-bench exited with ${code}`))));
  exited.catch(() => undefined);
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () => Promise.race([new Promise<string>((resolve) => waiting.push(resolve)), exited]);
  return {
    ready: next().then((line) => {
      if (line !== 'ready') throw new Error(`esper-bench: ${line}`);
    }),
    round: async (suite) => {
      const answer = next();
      child.stdin.write(`run ${suite}\n`);
      const r = JSON.parse(await answer) as { error?: string; seconds: number; firings: Record<string, number> };
      if (r.error) throw new Error(`esper-bench: ${r.error}`);
      return r;
    },
    quit: () => child.stdin.end('quit\n'),
  };
}

export async function esperCase(): Promise<void> {
  const { CorrelationEngine } = await import('../correlator/correlation/engine.js');
  const { loadRules, readYaml } = await import('../services/rules.js');
  const rules = loadRules();
  if (rules.problems.length) throw new Error(`rule problems: ${rules.problems.map((p) => p.message).join('; ')}`);
  const pack = rules.correlations;
  const raw = new Map<string, Record<string, unknown>>();
  for (const file of new Set(pack.map((c) => c.file))) {
    const doc = readYaml(file, []) as { correlations?: Record<string, unknown>[] } | undefined;
    for (const r of doc?.correlations ?? []) if (typeof r.id === 'string') raw.set(r.id, r);
  }
  const ROUNDS = Number(process.env.BENCH_ESPER_ROUNDS ?? 5);
  const WARMUP = Number(process.env.BENCH_ESPER_WARMUP ?? 2);
  const MODE = process.env.BENCH_ESPER_MODE === 'fresh' ? 'fresh' : 'shared';
  // Esper keeps every window whole; so does kubevigil here (its default bound of 100,000 window
  // entries would evict least recently fed actors on this stream and change the firings).
  const LIMITS = { maxEntries: Number(process.env.BENCH_ESPER_MAX_ENTRIES ?? 1e9) };
  const ACTORS = 20_000;
  const signals = await correlationSignals(undefined, ACTORS);
  shareStrings(signals);
  const M = signals.length;

  // Suites: each shape alone, then the pack. Sequences alone run both ways (the faster one counts
  // for Esper); the pack uses BENCH_ESPER_SEQUENCE (default: pattern, the faster of the two alone;
  // the sequences are a sliver of the pack's work, see bench/esper/README.md).
  const PACK_SEQUENCE: SequenceMode = process.env.BENCH_ESPER_SEQUENCE === 'context' ? 'context' : 'pattern';
  const suites: { name: string; shape: string; correlations: CompiledCorrelation[]; sequence: SequenceMode }[] = [];
  for (const shape of SHAPES) {
    const cs = pack.filter((c) => c.type === shape);
    if (!cs.length) continue;
    suites.push({ name: shape, shape, correlations: cs, sequence: 'pattern' });
    if (shape === 'temporal_ordered') suites.push({ name: `${shape}@context`, shape, correlations: cs, sequence: 'context' });
  }
  suites.push({ name: PACK_SEQUENCE === 'pattern' ? 'pack' : 'pack@context', shape: 'pack', correlations: pack, sequence: PACK_SEQUENCE });
  const shapes = [...new Set(suites.map((s) => s.shape))];
  const rulesOf = (shape: string) => (shape === 'pack' ? pack : pack.filter((c) => c.type === shape));

  const dir = mkdtempSync(join(tmpdir(), 'kubevigil-esper-'));
  try {
    writeFileSync(join(dir, 'signals.tsv'), signalsTsv(signals));
    writeFileSync(join(dir, 'suites.epl'), suites.map((s) => `-- suite: ${s.name}\n${correlationEpl(s.correlations, raw, s.sequence)}`).join(''));
    if (process.env.BENCH_ESPER_KEEP) console.log(`  stream and EPL kept in ${dir}`);
    ensureJar();
    const esper = startEsper([join(dir, 'signals.tsv'), join(dir, 'suites.epl'), String(WARMUP), MODE]);

    // kubevigil: an untimed first pass per shape (JIT warm-up, firings per correlation) while the
    // JVM compiles and warms up; then a fresh engine per round over the built signals.
    const kv = new Map<string, { seconds: number[]; firings: Map<string, number>; evicted: number }>();
    for (const shape of shapes) {
      const e = new CorrelationEngine(rulesOf(shape), LIMITS);
      const firings = new Map<string, number>();
      for (const s of signals) for (const f of e.process(s)) firings.set(f.correlation.id, (firings.get(f.correlation.id) ?? 0) + 1);
      kv.set(shape, { seconds: [], firings, evicted: e.stats.evictedGroups });
    }
    const kvRound = (shape: string) => {
      globalThis.gc?.();
      const cs = rulesOf(shape);
      const t0 = process.hrtime.bigint();
      const e = new CorrelationEngine(cs, LIMITS);
      let n = 0;
      for (const s of signals) n += e.process(s).length;
      kv.get(shape)!.seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
      return n;
    };
    await esper.ready;

    // Rounds interleave: one kubevigil round of a shape next to one Esper round of each of its suites.
    const es = new Map<string, { seconds: number[]; firings: Record<string, number> }>(suites.map((s) => [s.name, { seconds: [], firings: {} }]));
    for (let i = 0; i < ROUNDS; i++)
      for (const shape of shapes) {
        if (i % 2 === 0) kvRound(shape);
        for (const s of suites.filter((x) => x.shape === shape)) {
          const r = await esper.round(s.name);
          es.get(s.name)!.seconds.push(r.seconds);
          es.get(s.name)!.firings = r.firings;
        }
        if (i % 2 === 1) kvRound(shape);
      }
    esper.quit();

    const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(11);
    const total = (f: Iterable<number>) => [...f].reduce((a, b) => a + b, 0);
    console.log(
      `esper: ${M} signals from ${ACTORS} actors, ${pack.length} correlation rules; Esper 9.0.0 (${MODE} runtime), ${WARMUP} warm-up + ${ROUNDS} interleaved rounds, medians`,
    );
    for (const shape of shapes) {
      const k = kv.get(shape)!;
      const kvRate = M / median(k.seconds);
      const candidates = suites
        .filter((s) => s.shape === shape)
        .map((s) => ({ name: s.name, rate: M / median(es.get(s.name)!.seconds), firings: es.get(s.name)!.firings }));
      for (const c of candidates)
        console.log(
          `  ${c.name.padEnd(24)} kubevigil ${fmt(kvRate)} signals/s  firings ${String(total(k.firings.values())).padStart(5)}${k.evicted ? ` (${k.evicted} groups evicted)` : ''}   esper ${fmt(c.rate)} events/s  firings ${String(total(Object.values(c.firings))).padStart(5)}`,
        );
      const best = candidates.reduce((a, b) => (b.rate > a.rate ? b : a));
      console.log(`correlation vs esper (${shape}): ratio ${(kvRate / best.rate).toFixed(2)}`);
      if (shape === 'pack') {
        console.log(`  firings per correlation in the pack (kubevigil / esper ${best.name}):`);
        const ids = pack.map((c) => c.id);
        for (const id of ids) console.log(`    ${id.padEnd(30)} ${String(k.firings.get(id) ?? 0).padStart(5)} / ${best.firings[id] ?? 0}`);
      }
    }
  } finally {
    if (!process.env.BENCH_ESPER_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
