// remote-runner-controller --socket <path>: the run's controller, started by the
// first instance's process of a run (docs/controller.md).
import { parseArgs } from 'node:util';
import { TgError } from '../../shared/error.ts';
import { parseDurationMs } from '../../shared/duration.ts';
import { serveRun } from './server.ts';

const usage = 'usage: remote-runner-controller --socket <path> [--idle 10s] [--grace 10s]';

/** A daemon: it outlives the instance's process that started it. */
export const detached = true;

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let values: { socket?: string | undefined; idle?: string | undefined; grace?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: argv, options: { socket: { type: 'string' }, idle: { type: 'string' }, grace: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (error) {
    throw new TgError('E_USAGE', `${(error as Error).message}\n${usage}`, { cause: error });
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (!values.socket) throw new TgError('E_USAGE', `--socket is required\n${usage}`);
  await serveRun({
    socket: values.socket,
    idleMs: values.idle ? parseDurationMs(values.idle, '--idle') : 10_000,
    graceMs: values.grace ? parseDurationMs(values.grace, '--grace') : 10_000,
    log: (line) => void process.stderr.write(`${new Date().toISOString()} ${line}\n`),
  });
  return 0;
}
