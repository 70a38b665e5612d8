// Why B1, B3, B4 and B5 stand where they do against their goals, from their profiles.
import type { B1Profile } from './b1-overhead.ts';
import type { Row } from './compare.ts';
import type { Findings } from './findings.ts';
import { appAlone, mbps, ms0, nagleFixed, part } from './report-parts.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

export function b1Gap(b1: B1Profile, base: number, ours: number): string[] {
  const at = (phase: string): number | undefined => b1.ours.find((t) => t.label.startsWith(`${phase}:`))?.at;
  const chosen = at('chosen');
  const copied = at('copy');
  const ran = at('run');
  const app = appAlone(b1);
  const sshTrue = part(b1, 'OpenSSH: ssh host true');
  const agent = part(b1, 'remote: remote-agent start');
  const nd = b1.noDelay;
  const fixed = nagleFixed(b1);
  const ndRun = median(b1.noDelayRuns.noDelay);
  const nowRun = median(b1.noDelayRuns.now);
  const coldTotal = Object.values(b1.cold).reduce((a, b) => a + b, 0);
  const target = base * 0.5;
  const { runner, controller } = b1.starts;
  const floor = nd.noDelay.connect + (agent ?? 0) + (app ?? 0);
  const runPhase = copied !== undefined && ran !== undefined ? ran - copied : undefined;
  const out = [
    `Ours takes ${fmtMs(ours)}, the baseline ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. ` +
      `The baseline is five OpenSSH connections (${ms0(sshTrue)} each for \`ssh host true\`) around one run of the app (${ms0(app)} on its own). ` +
      `Ours is the instance's process here, the Go remote-runner (${fmtMs(runner)} to start), which, as the first instance of its run, starts the run's controller (node and its bundle, ${fmtMs(controller)} to start alone); ` +
      'the controller makes one ssh2 connection and starts two processes on the host: the agent, a static Go binary, and the app, node on one bundle. Where its time goes (timeline above):',
    '',
    `- **${ms0(chosen)} until a host is chosen**: the Go process's start, the controller's start, its connection to the run's sync service and the sign-up for a sequence number (\`choose-server\`); the controller's start is most of it.`,
    `- **${chosen !== undefined && copied !== undefined ? fmtMs(copied - chosen) : 'n/a'} to connect and learn that the closure is present.** ` +
      `In a fresh process these steps take ${fmtMs(coldTotal)} (${Object.entries(b1.cold).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ')}); ` +
      `warm, in this process, ssh -G + connect takes ${fmtMs(nd.now.connect)}: the handshake's crypto and ssh2's code run cold in a controller that has just started.`,
    `- **${ms0(runPhase)} to forward the sync service, start the agent and run the app** (measured alone: the agent's start ${ms0(agent)}, the app's whole run ${ms0(app)})` +
      (fixed
        ? '.'
        : `; the rest is waiting on the SSH socket: openSsh connects without TCP_NODELAY, so every small request that waits for an answer sits out the peer's delayed ACK ` +
          `(an exec round trip takes ${fmtMs(nd.now.roundTrip)}, ${fmtMs(nd.noDelay.roundTrip)} with TCP_NODELAY; forwardIn ${fmtMs(nd.now.forward)} against ${fmtMs(nd.noDelay.forward)}), and the app's own sync-service requests travel through that socket too.`),
    '',
  ];
  if (!fixed) {
    out.push(`Measured end to end, TCP_NODELAY alone takes a whole run of ours from ${fmtMs(nowRun)} to ${fmtMs(ndRun)} (ratio about ${fmtRatio(ndRun / base)}). `, '');
  }
  const withoutStart = ours - controller;
  out.push(
    `A run of one instance pays the controller's start in full; in a run of many it is paid once (B2, B6). Without it, ours would take about ${fmtMs(withoutStart)} (a ratio near ${fmtRatio(withoutStart / base)}); ` +
      `the floor of this structure is one connection, the agent and the app (${fmtMs(floor)}). ` +
      `So what stands between ours and the goal is the controller's start: ${fmtMs(controller)}, most of it node loading and compiling the bundle (node running nothing starts in ${ms0(part(b1, 'remote: node -e'))} on a host). ` +
      'What would shorten it: a smaller bundle at the start (the controller loads the SSH, closure and outputs modules before its socket listens; it could listen first and load them while the instance signs up), ' +
      "or the bundle's compiled code kept between starts (V8's code cache: node 22's `module.enableCompileCache()`, which node 20 lacks).",
  );
  if (!fixed) {
    out.push(
      '',
      `Also: \`helpers/ssh/session.ts\`, \`openSsh\`: connect with \`net.connect({ host, port, noDelay: true })\`. Expected: −${fmtMs(nowRun - ndRun)} per instance here (B1 end to end), about ${fmtMs(nd.now.roundTrip - nd.noDelay.roundTrip)} off every exec or forward request.`,
    );
  }
  return out;
}

export function b3Gap(row: Row, f: Findings, base: number, ours: number): string[] {
  if (row.id === 'B3 big file') {
    return [
      `Ours ${fmtMs(ours)} against scp's ${fmtMs(base)} (${mbps(row, 'ours')} against ${mbps(row, 'baseline')}); the pairs' ratios: ${row.ratios.map(fmtRatio).join(', ')}. ` +
        'One stream of one file is bounded by the cipher and the copies on each side. Ours adds the tar framing; on the host the agent (Go) reads the file and writes it to sshd, ' +
        "and here every byte passes through node (ssh2's decryption, then extractOutputs' writes), where scp is C at both ends. See B4 for the cipher throughputs.",
    ];
  }
  const local = f.b3Local;
  const p = f.b3?.[row.id];
  const target = base * row.goal.value;
  const out = [
    `Ours takes ${fmtMs(ours)}, scp ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. The transport is not what limits ours: it connects in ${ms0(p?.connectMs)} and the first tar byte arrives at ${ms0(p?.firstByteMs)}.`,
  ];
  if (!local) return out;
  const perFile = (ms: number): string => `${Math.round((ms / local.files) * 1000)} µs`;
  const v = f.b3Variants;
  const now = v?.now.length ? median(v.now) : undefined;
  const sketch = v?.syncExtract?.length ? median(v.syncExtract) : undefined;
  const sum = local.packMs + local.extractMs;
  const packSlow = local.packMs > 1.5 * local.gnuCreateMs;
  const extractOverhead = local.extractMs > 1.5 * local.gnuExtractMs;
  const sketchGains = sketch !== undefined && now !== undefined && sketch < 0.9 * now;
  const overlap = ours < 0.8 * sum ? 'less than their sum: the two overlap' : ours <= sum * 1.25 ? 'about their sum' : 'more than their sum';
  out.push(
    '',
    `What limits it is the work per file (table above). \`remote-agent pack\` takes ${fmtMs(local.packMs)} for these ${local.files} files (${perFile(local.packMs)} a file, its start included)` +
      (packSlow
        ? `, ${fmtRatio(local.packMs / local.gnuCreateMs)} times what GNU tar needs (${fmtMs(local.gnuCreateMs)}). `
        : ` where GNU tar needs ${fmtMs(local.gnuCreateMs)}: the agent packs at the file system's pace. `) +
      (extractOverhead
        ? `extractOutputs takes ${fmtMs(local.extractMs)} (${perFile(local.extractMs)} a file) where GNU tar needs ${fmtMs(local.gnuExtractMs)}: it awaits one asynchronous fs call per step of every file (open, fchmod, write, close), each a round trip through libuv's thread pool and a promise; ` +
          `the sketch that makes the same calls synchronously takes ${fmtMs(local.syncExtractMs)}. `
        : `extractOutputs takes ${fmtMs(local.extractMs)}, about what GNU tar needs (${fmtMs(local.gnuExtractMs)}) and the synchronous sketch (${fmtMs(local.syncExtractMs)}): in this run the file system set that pace, creating ${local.files} files on a shared disk, which scp pays as well. `) +
      `Packing on the host and extracting here could overlap; ours takes ${overlap} (${fmtMs(sum)} alone, ${fmtMs(ours)} in the pull), both sides running on the same two cores, which also run the cipher at each end.` +
      (sketch !== undefined && now !== undefined
        ? ` A whole pull with the extract sketch took ${fmtMs(sketch)} against ${fmtMs(now)} for ours in the same rounds, a ratio near ${fmtRatio(sketch / base)} against this run's scp.`
        : ''),
    '',
    sketchGains
      ? 'Change: `helpers/outputs/tar.ts`. In `Placer.file`, collect the chunks of an entry up to, say, 1 MiB and write it with `openSync` (same flags), `writeSync` and `closeSync` (larger files keep the streaming path), ' +
          'and skip the `fchmod` when `open` already applied the mode (`(mode & ~umask) === mode`); in `Placer.directory`, the `lstat`/`mkdir` pair can be synchronous too. ' +
          'The checks stay as they are (names, O_EXCL|O_NOFOLLOW, parents that are real directories); only the waiting goes. ' +
          `Expected: about the sketch's gain, ${Math.round((1 - sketch / now) * 100)}% off a pull here (${fmtMs(sketch)} against ${fmtMs(now)} in the same rounds); ` +
          'what is left is the packing on the host, the file system creating the files (as for scp) and the cipher.'
      : `Synchronous writes in extractOutputs did not pay off in whole pulls in this run: the extract sketch ${sketch !== undefined && now !== undefined ? `saved under 10% of a whole pull (${fmtMs(sketch)} against ${fmtMs(now)})` : 'was not measured in whole pulls'}. ` +
          'What is left is the packing on the host, the file system creating the files (as for scp) and the cipher.',
  );
  return out;
}

export function b4Gap(row: Row, f: Findings, raw: Row | undefined): string[] {
  const parts = f.b4?.stages ?? {};
  const stage = (prefix: string): string => {
    const key = Object.keys(parts).find((k) => k.startsWith(prefix));
    return key ? `${parts[key]!.toFixed(0)} MB/s` : 'n/a';
  };
  const oursRate = row.bytes ? row.bytes / 1e6 / (median(row.ours) / 1000) : Number.NaN;
  const otherRate = row.bytes ? row.bytes / 1e6 / (median(row.baseline) / 1000) : Number.NaN;
  const stages =
    `Alone, the stages run at: local export ${stage('local nix-store --export')}, ssh2 ${stage('ssh2')}, OpenSSH ${stage('OpenSSH cat')} (chacha20-poly1305) or ${stage('OpenSSH -c aes128-gcm')} (aes128-gcm), remote import ${stage('remote nix-store --import')}. ` +
    'In the copy they run at once, export and ssh2 here, sshd and import on the host, all on the same two cores.';
  if (row.id === 'B4 vs ssh') {
    return [
      `Ours moves ${oursRate.toFixed(0)} MB/s against ${otherRate.toFixed(0)} MB/s for \`ssh host 'cat > /dev/null'\` (both whole processes, connection included). ${stages} ` +
        'The raw stream only encrypts and decrypts; ours also hashes on export and hashes and writes on import, on the same cores. ' +
        `Of ours' ${fmtMs(median(row.ours))}, ${ms0(f.b4?.fixedMs)} do not depend on the size (ours with nothing to send).`,
    ];
  }
  const rawRate = raw?.bytes ? raw.bytes / 1e6 / (median(raw.baseline) / 1000) : Number.NaN;
  const factor = (2 * otherRate) / rawRate;
  const fixed = f.b4?.fixedMs;
  const streamRate = row.bytes && fixed !== undefined ? row.bytes / 1e6 / ((median(row.ours) - fixed) / 1000) : Number.NaN;
  return [
    `Ours moves ${oursRate.toFixed(0)} MB/s, \`nix copy --to ssh://\` ${otherRate.toFixed(0)} MB/s. Twice nix copy would be ${(2 * otherRate).toFixed(0)} MB/s, ${Number.isFinite(factor) ? `${factor.toFixed(1)} times` : 'more than'} what the raw SSH stream moves here. ` +
      'Nothing that goes through one SSH stream beats the stream, and on this machine nix copy already runs close to it: the gap the issue saw (nix copy at 125 MB/s where raw SSH moved 600–800 MB/s) does not exist on two cores, where the cipher itself is the limit. ' +
      stages,
    '',
    'What would close it where the gap does exist (more cores, a fast link): ours already streams export into import over one channel, so the rest is more than one stream and fewer bytes: ' +
      'split the missing paths over several exec channels or connections (one per core, each its own `nix-store --export` into its own `nix-store --import`), so encryption and hashing use every core; ' +
      'and compress the stream (zstd at a low level on both ends) for real closures, which shrink two to four times (random data, as here, does not). ' +
      'On this machine neither helps: every core is already busy with the four stages.',
    '',
    `Of ours' ${fmtMs(median(row.ours))}, ${ms0(fixed)} do not depend on the size (connect, list, ask the host: the time it takes with nothing to send), so the stream itself runs at about ${Number.isFinite(streamRate) ? streamRate.toFixed(0) : 'n/a'} MB/s` +
      (streamRate < otherRate
        ? `, below nix copy's ${otherRate.toFixed(0)} MB/s: in ours every byte also passes through node (a pipe read, ssh2's packets, OpenSSL through node's crypto), CPU that the other stages need on two cores, where nix copy hands its stream from C++ straight to the OpenSSH client. ` +
          'Streaming the export through an OpenSSH client process instead (`nix-store --export … | ssh host nix-store --import`, with the same pinned known_hosts) would take node out of the byte path.'
        : '.'),
  ];
}

export function b5Gap(row: Row, f: Findings, base: number, ours: number): string[] {
  const cpu = f.b5;
  const phase = row.id === 'B5 barrier' ? 'barrier' : 'pubsub';
  const go = cpu ? median(cpu[phase].go) : Number.NaN;
  const our = cpu ? median(cpu[phase].ours) : Number.NaN;
  return [
    `Ours ${fmtMs(ours)} against Go's ${fmtMs(base)}; the pairs' ratios: ${row.ratios.map(fmtRatio).join(', ')}. The services used ${fmtMs(our)} (ours) and ${fmtMs(go)} (Go) of CPU in this phase. ` +
      (our < go * 0.9
        ? "Ours does less work; it loses on parallelism: one node thread accepts and upgrades the connections one after another, where Go's service spreads them over both cores, and the load script in this process competes for the same two cores. "
        : our <= go * 1.1
          ? "Both do about the same work; ours does it on one node thread, one connection after another, where Go's service spreads it over both cores (and the load script in this process competes for the same two cores). "
          : "Ours spends more CPU here: each of the 1,000 connections costs an HTTP upgrade in node's single thread. ") +
      "The phase is short, so the machine's other work moves it a lot. What would close it: accept and upgrade connections on more than one thread " +
      '(workers sharing the listening socket that hand the upgraded sockets, or just their frames, to the one thread that keeps the state).',
  ];
}
