// Samples a run's processes while it goes on: every tick the resident set (VmRSS) of
// each process on the controller's side, and every few ticks a scan of /proc that
// finds new processes (the tree below tg-run, the run's controller by its socket)
// and measures each lab host's sshd, agent and apps, and everyone's CPU time.
import { cmdlineOf, controllerSocket, environValue, labNamespaces, openFiles, pidNamespace, rollup, scanProcs, subtree, vmRssKiB, type Proc, type Rollup } from './procs.ts';

/** What a process is, on the controller's side or on a lab host. */
export type ControllerKind = 'tg-run' | 'controller' | 'instance processes' | 'nix' | 'ssh' | 'other';
export type HostKind = 'sshd' | 'agent' | 'apps' | 'nix' | 'other';

export const CONTROLLER_KINDS: ControllerKind[] = ['tg-run', 'controller', 'instance processes', 'nix', 'ssh', 'other'];
export const HOST_KINDS: HostKind[] = ['sshd', 'agent', 'apps', 'nix', 'other'];

const isNix = (comm: string): boolean => /^nix(-store|-daemon)?$/.test(comm);

// What a process below tg-run or the controller is, by its command name.
function controllerKind(p: Proc): ControllerKind {
  if (p.comm === 'remote-runner') return 'instance processes';
  if (isNix(p.comm)) return 'nix';
  return p.comm === 'ssh' ? 'ssh' : 'other';
}

// What a process of a lab host is; `apps` are the processes below the run's agents, and
// an agent without any (another run's, still winding down) is not this run's.
function hostKind(p: Proc, apps: Set<number>, agents: Set<number>): HostKind {
  if (apps.has(p.pid)) return 'apps';
  if (agents.has(p.pid)) return 'agent';
  if (p.comm === 'sshd') return 'sshd';
  return isNix(p.comm) ? 'nix' : 'other';
}

/** One sample of the controller's side: resident sets by kind, in KiB. */
export interface ControllerSample {
  /** ms since the sampler started. */
  t: number;
  totalKiB: number;
  kiB: Record<ControllerKind, number>;
  count: Record<ControllerKind, number>;
  /** Apps alive on the hosts at the latest scan. */
  appsAlive: number;
}

/** One host at one scan: resident sets by kind (KiB) and the apps alive there. */
export interface HostSample {
  kiB: Record<HostKind, number>;
  count: Record<HostKind, number>;
}

/** Resident sets taken apart, summed over the processes of a kind, with how many there were, and the most files one of them had open (with its limit). */
export type KindRollup = Rollup & { count: number; maxOpenFiles: number; openFilesLimit: number };

/** What the sampler saw over a run. */
export interface RunMemory {
  expected: number;
  /** True when every expected app was seen alive at once; otherwise the figures are at the most seen. */
  allRunning: boolean;
  maxAlive: number;
  /** The controller's side at its peak while the most apps ran. */
  peak: ControllerSample | undefined;
  /** The controller's side just before the first app started. */
  before: ControllerSample | undefined;
  /** Each host at the scan where its agent and apps held the most, while the most apps ran. */
  hosts: Record<string, HostSample>;
  /** smaps_rollup of every process, once, when the most apps ran. */
  rollups: { controller: Partial<Record<ControllerKind, KindRollup>>; hosts: Partial<Record<HostKind, KindRollup>> };
  /** CPU seconds by side and kind over the run (processes seen by at least one scan). */
  cpuS: { controller: Record<ControllerKind, number>; hosts: Record<HostKind, number> };
  /** One sample a second: ms since the start, the controller's side in KiB, apps alive. */
  timeline: Array<[number, number, number]>;
  /** ms since the start: the first app seen, every expected app seen alive, the last app gone. */
  firstAppMs?: number;
  allAppsMs?: number;
  appsGoneMs?: number;
}

const zero = <K extends string>(kinds: K[]): Record<K, number> => Object.fromEntries(kinds.map((k) => [k, 0])) as Record<K, number>;

export class RunSampler {
  readonly #root: number;
  readonly #hosts: string[];
  readonly #expected: number;
  readonly #tickMs: number;
  readonly #scanEvery: number;
  readonly #t0 = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  #controller: number | undefined;
  #socket: string | undefined;
  readonly #checked = new Set<string>();
  /** Controller-side pids and their kinds, from the latest scan. */
  #kinds = new Map<number, ControllerKind>();
  #appsAlive = 0;
  #maxAlive = 0;
  readonly #samples: ControllerSample[] = [];
  #hostPeak: { alive: number; kiB: number; hosts: Record<string, HostSample> } = { alive: -1, kiB: -1, hosts: {} };
  #rollups: RunMemory['rollups'] | undefined;
  #rollupAlive = 0;
  readonly #cpu = new Map<string, { side: 'controller' | 'hosts'; kind: string; base: number; last: number }>();
  #firstScan = true;
  #namespaces: Map<string, string> | undefined;
  /** Each process's lab host, or null for a process of this machine, by pid and start time. */
  readonly #hostOf = new Map<string, string | null>();
  #firstAppMs: number | undefined;
  #allAppsMs: number | undefined;
  #appsGoneMs: number | undefined;

  constructor(o: { root: number; hosts: string[]; expected: number; tickMs?: number; scanEvery?: number }) {
    this.#root = o.root;
    this.#hosts = o.hosts;
    this.#expected = o.expected;
    this.#tickMs = o.tickMs ?? 250;
    this.#scanEvery = o.scanEvery ?? 4;
  }

  start(): void {
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
  }

  stop(): RunMemory {
    clearInterval(this.#timer);
    const allRunning = this.#maxAlive >= this.#expected;
    const running = this.#samples.filter((s) => s.appsAlive >= this.#maxAlive && this.#maxAlive > 0);
    const peak = running.reduce<ControllerSample | undefined>((best, s) => (!best || s.totalKiB > best.totalKiB ? s : best), undefined);
    const first = this.#firstAppMs;
    const before = first === undefined ? undefined : this.#samples.filter((s) => s.t < first && s.appsAlive === 0).at(-1);
    const cpuS = { controller: zero(CONTROLLER_KINDS), hosts: zero(HOST_KINDS) };
    for (const c of this.#cpu.values()) {
      const table = cpuS[c.side] as Record<string, number>;
      table[c.kind] = (table[c.kind] ?? 0) + (c.last - c.base) / 100;
    }
    return {
      expected: this.#expected,
      allRunning,
      maxAlive: this.#maxAlive,
      peak,
      before,
      hosts: this.#hostPeak.hosts,
      rollups: this.#rollups ?? { controller: {}, hosts: {} },
      timeline: this.#samples.filter((_, i) => i % Math.max(1, Math.round(1000 / this.#tickMs)) === 0).map((s) => [Math.round(s.t), s.totalKiB, s.appsAlive]),
      cpuS,
      ...(this.#firstAppMs !== undefined ? { firstAppMs: this.#firstAppMs } : {}),
      ...(this.#allAppsMs !== undefined ? { allAppsMs: this.#allAppsMs } : {}),
      ...(this.#appsGoneMs !== undefined ? { appsGoneMs: this.#appsGoneMs } : {}),
    };
  }

  #tick(): void {
    if (this.#ticks++ % this.#scanEvery === 0) this.#scan();
    const kiB = zero(CONTROLLER_KINDS);
    const count = zero(CONTROLLER_KINDS);
    for (const [pid, kind] of this.#kinds) {
      const rss = vmRssKiB(pid);
      if (rss === undefined) continue;
      kiB[kind] += rss;
      count[kind] += 1;
    }
    const totalKiB = CONTROLLER_KINDS.reduce((n, k) => n + kiB[k], 0);
    this.#samples.push({ t: performance.now() - this.#t0, totalKiB, kiB, count, appsAlive: this.#appsAlive });
  }

  #scan(): void {
    const procs = scanProcs();
    const t = performance.now() - this.#t0;
    this.#findController(procs);

    const kinds = new Map<number, ControllerKind>();
    for (const pid of subtree(procs, this.#root)) kinds.set(pid, pid === this.#root ? 'tg-run' : controllerKind(procs.get(pid)!));
    if (this.#controller !== undefined) for (const pid of subtree(procs, this.#controller)) kinds.set(pid, pid === this.#controller ? 'controller' : controllerKind(procs.get(pid)!));
    this.#kinds = kinds;
    for (const [pid, kind] of kinds) this.#countCpu(procs.get(pid)!, 'controller', kind);

    // Each process's host (or none), looked up once per process.
    const namespaces = this.#namespaces ??= labNamespaces(this.#hosts);
    const byHost = new Map<string, Proc[]>(this.#hosts.map((h) => [h, []]));
    for (const p of procs.values()) {
      const key = `${p.pid}:${p.start}`;
      let host = this.#hostOf.get(key);
      if (host === undefined) {
        const ns = pidNamespace(p.pid);
        host = (ns && namespaces.get(ns)) || null;
        this.#hostOf.set(key, host);
      }
      if (host && p.ppid !== 0) byHost.get(host)?.push(p);
    }
    const hosts: Record<string, HostSample> = {};
    const hostKinds = new Map<number, HostKind>();
    let alive = 0;
    let hostKiB = 0;
    for (const [host, list] of byHost) {
      const sample: HostSample = { kiB: zero(HOST_KINDS), count: zero(HOST_KINDS) };
      const allAgents = list.filter((p) => p.comm === 'remote-agent').map((p) => p.pid);
      const below = new Map(allAgents.map((a) => [a, subtree(procs, a).filter((pid) => pid !== a)]));
      const apps = new Set([...below.values()].flat());
      // Before the first app (and after the last) an agent has none: it counts as the run's while no agent has any.
      const busy = allAgents.filter((a) => below.get(a)!.length > 0);
      const agents = busy.length > 0 ? busy : allAgents;
      const agentSet = new Set(agents);
      for (const p of list) {
        const kind = hostKind(p, apps, agentSet);
        hostKinds.set(p.pid, kind);
        sample.kiB[kind] += p.rssKiB;
        sample.count[kind] += 1;
        this.#countCpu(p, 'hosts', kind);
      }
      // Apps: the agents' children (an app's own helpers are counted in its memory, not as apps).
      sample.count.apps = [...apps].filter((pid) => agentSet.has(procs.get(pid)!.ppid)).length;
      alive += sample.count.apps;
      hostKiB += sample.kiB.agent + sample.kiB.apps;
      hosts[host] = sample;
    }
    this.#firstScan = false;
    this.#appsAlive = alive;
    if (alive > 0) this.#firstAppMs ??= t;
    if (alive >= this.#expected) this.#allAppsMs ??= t;
    if (alive === 0 && this.#firstAppMs !== undefined) this.#appsGoneMs ??= t;
    this.#maxAlive = Math.max(this.#maxAlive, alive);
    if (alive > this.#hostPeak.alive || (alive === this.#hostPeak.alive && hostKiB > this.#hostPeak.kiB)) this.#hostPeak = { alive, kiB: hostKiB, hosts };
    // Once, when every app runs (or, until then, whenever more run than before): take each resident set apart.
    if (alive > this.#rollupAlive && (alive >= this.#expected || alive > this.#rollupAlive * 1.25)) {
      this.#rollupAlive = alive;
      this.#rollups = { controller: this.#rollupOf(kinds), hosts: this.#rollupOf(hostKinds) };
    }
  }

  // The controller is detached (a session of its own): found by its socket, named after the run.
  #findController(procs: Map<number, Proc>): void {
    if (this.#controller !== undefined && procs.has(this.#controller)) return;
    this.#controller = undefined;
    if (!this.#socket) {
      const instance = subtree(procs, this.#root).find((pid) => procs.get(pid)!.comm === 'remote-runner');
      const run = instance === undefined ? undefined : environValue(instance, 'TEST_RUN');
      if (run) this.#socket = controllerSocket(run);
    }
    if (!this.#socket) return;
    for (const p of procs.values()) {
      const key = `${p.pid}:${p.start}`;
      if (p.comm !== 'node' || this.#checked.has(key)) continue;
      this.#checked.add(key);
      const argv = cmdlineOf(p.pid);
      if (argv.some((a) => a.includes('remote-runner-controller')) && argv[argv.indexOf('--socket') + 1] === this.#socket) {
        this.#controller = p.pid;
        return;
      }
    }
  }

  #countCpu(p: Proc, side: 'controller' | 'hosts', kind: string): void {
    const key = `${p.pid}:${p.start}`;
    const seen = this.#cpu.get(key);
    if (seen) seen.last = p.cpuTicks;
    // What a process that was already there at the first scan had used before does not count.
    else this.#cpu.set(key, { side, kind, base: this.#firstScan ? p.cpuTicks : 0, last: p.cpuTicks });
  }

  #rollupOf<K extends string>(kinds: Map<number, K>): Partial<Record<K, KindRollup>> {
    const out: Partial<Record<K, KindRollup>> = {};
    for (const [pid, kind] of kinds) {
      const r = rollup(pid);
      if (!r) continue;
      const sum = (out[kind] ??= { rssKiB: 0, pssKiB: 0, anonKiB: 0, count: 0, maxOpenFiles: 0, openFilesLimit: Number.NaN });
      const files = openFiles(pid);
      if (files && files.open > sum.maxOpenFiles) {
        sum.maxOpenFiles = files.open;
        sum.openFilesLimit = files.limit;
      }
      sum.rssKiB += r.rssKiB;
      sum.pssKiB += r.pssKiB;
      sum.anonKiB += r.anonKiB;
      sum.count += 1;
    }
    return out;
  }
}
