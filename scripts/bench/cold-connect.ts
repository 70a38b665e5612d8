// B1's profile of the runner's first steps in a fresh process (cold JIT, as a runner
// starts): resolve the alias, connect, list the closure, ask the host what it lacks.
// Bundled and run with the closure's node by proposals.ts; prints its timings as JSON.
import { remoteMissing } from '../../helpers/closure/copy.ts';
import { localClosure } from '../../helpers/closure/store.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';

const [host, ...roots] = process.argv.slice(2);
if (!host || roots.length === 0) throw new Error('usage: cold-connect <host> <store path>...');
const t: Record<string, number> = {};
let at = performance.now();
const lap = (name: string): void => {
  const now = performance.now();
  t[name] = now - at;
  at = now;
};
const target = await resolveSshTarget(host);
lap('ssh -G (resolveSshTarget)');
const ssh = await openSsh(target);
lap('openSsh (handshake and login)');
const closure = await localClosure(roots);
lap('nix-store --query --requisites (local)');
await remoteMissing(ssh, host, closure);
lap('nix-store --check-validity (remote, over the connection)');
await ssh.close();
lap('close');
process.stdout.write(`${JSON.stringify(t)}\n`);
