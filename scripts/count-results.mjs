#!/usr/bin/env node
// Prints `N passed, N failed` from the JSON reports of the last `npm test`.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countResults } from './suites.mjs';

const { passed, failed, missing } = countResults(resolve(dirname(fileURLToPath(import.meta.url)), '..'));
console.log(`${passed} passed, ${failed + missing.length} failed`);
