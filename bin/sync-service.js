#!/usr/bin/env node
import { launch } from './_launch.js';

await launch('../helpers/sync-service/cli.ts');
