// sync-service [--host 127.0.0.1] [--port 5050]: serve until SIGINT or SIGTERM.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { startSyncService } from './server.ts';

const usage = 'usage: sync-service [--host 127.0.0.1] [--port 5050]';

const flagsSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(5050),
});

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let flags: z.infer<typeof flagsSchema>;
  try {
    const { values } = parseArgs({ args: argv, options: { host: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean' } } });
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
