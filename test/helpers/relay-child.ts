// A process that relays a closure from one lab host to another and then waits
// to be killed: `node --import tsx test/helpers/relay-child.ts SOURCE TARGET PATH...`.
// It prints `relaying` once both connections are up.
import { relayCopy } from '../../helpers/closure/relay.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { openSsh } from '../../helpers/ssh/session.ts';

const [source, target, ...paths] = process.argv.slice(2);
const open = async (alias: string) => ({ alias, ssh: await openSsh(await resolveSshTarget(alias), { signal: AbortSignal.timeout(30_000) }) });
const [from, to] = await Promise.all([open(source!), open(target!)]);
console.log('relaying');
await relayCopy(from, to, paths);
console.log('relayed');
await Promise.all([from.ssh.close(), to.ssh.close()]);
