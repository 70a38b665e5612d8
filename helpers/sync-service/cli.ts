// sync-service [--host 127.0.0.1] [--port 5050] [limits]: serve until SIGINT or SIGTERM.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { startSyncService } from './server.ts';

const usage = [
  'usage: sync-service [--host 127.0.0.1] [--port 5050]',
  '         [--max-states 100000] [--max-subscriptions 1000] [--max-queued-bytes 4194304]',
  '         [--stall-timeout-ms 10000] [--gc-interval-ms 600000] [--gc-idle-ms 600000]',
].join('\n');

const count = z.coerce.number().int().positive();

const flagsSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(5050),
  'max-states': count.optional(),
  'max-subscriptions': count.optional(),
  'max-queued-bytes': count.optional(),
  'stall-timeout-ms': count.optional(),
  'gc-interval-ms': count.optional(),
  'gc-idle-ms': z.coerce.number().int().nonnegative().optional(),
});

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let flags: z.infer<typeof flagsSchema>;
  try {
    const options = Object.fromEntries(Object.keys(flagsSchema.shape).map((name) => [name, { type: 'string' as const }]));
    const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } } });
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    flags = flagsSchema.parse(values);
  } catch (error) {
    const detail = error instanceof z.ZodError ? error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ') : (error as Error).message;
    throw new TgError('E_USAGE', `${detail}\n${usage}`, { cause: error });
  }
  const service = await startSyncService({
    host: flags.host,
    port: flags.port,
    maxStates: flags['max-states'],
    maxSubscriptions: flags['max-subscriptions'],
    maxQueuedBytes: flags['max-queued-bytes'],
    stallTimeoutMs: flags['stall-timeout-ms'],
    gc: { intervalMs: flags['gc-interval-ms'], idleMs: flags['gc-idle-ms'] },
    log: (level, message) => process.stderr.write(`${level}: ${message}\n`),
  });
  process.stdout.write(`${service.url}\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.stderr.write(`info: ${signal}: shutting down\n`);
  await service.close();
  return 0;
}
