// Every test case of the plan, by the name the manifest gives it.
import type { Case } from '../context.ts';
import { crash } from './crash.ts';
import { fail } from './fail.ts';
import { inspect } from './inspect.ts';
import { ok } from './ok.ts';
import { serverClient } from './server-client.ts';
import { stall } from './stall.ts';
import { sleep } from './sleep.ts';
import { hostileOutputs } from './hostile-outputs.ts';
import { escape } from './escape.ts';
import { chatty } from './chatty.ts';
import { bigOutputs } from './big-outputs.ts';
import { oneCrashes } from './one-crashes.ts';

export const cases: Readonly<Record<string, Case>> = {
  'server-client': serverClient,
  ok,
  fail,
  crash,
  stall,
  inspect,
  sleep,
  'hostile-outputs': hostileOutputs,
  escape,
  chatty,
  'big-outputs': bigOutputs,
  'one-crashes': oneCrashes,
};
