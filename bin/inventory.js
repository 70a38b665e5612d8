#!/usr/bin/env node
import { launch } from './_launch.js';

await launch('../helpers/inventory/cli.ts');
