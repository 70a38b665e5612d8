// The plan's program: run the test case TEST_CASE names, with the run environment.
import { runMain } from '../../helpers/shared/cli.ts';
import { main } from './main.ts';

await runMain(main);
