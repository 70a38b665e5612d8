#!/usr/bin/env node
import { launch } from './_launch.js';

await launch('../helpers/remote-runner/controller/cli.ts');
