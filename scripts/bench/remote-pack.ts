// B3's remote half: pack the dir named by the first argument onto stdout with
// packOutputs, the code the agent runs. Bundled into one file (scripts/bench/b3-outputs.ts)
// and run on the host with the node of the app's closure.
import { packOutputs } from '../../helpers/outputs/tar.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: remote-pack <dir>');
packOutputs(dir).pipe(process.stdout);
