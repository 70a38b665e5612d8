#!/usr/bin/env node
import { launch } from './_launch.js';

await launch('../plans/remote-runner/main.ts');
