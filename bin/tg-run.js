#!/usr/bin/env node
import { launch } from './_launch.js';

await launch('../helpers/tg-run/cli.ts');
