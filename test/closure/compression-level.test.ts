// The zstd level a copy uses follows the link the probes measured: the slower the
// link, the more the CPU can spend to send fewer bytes.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LEVEL, levelFor, ZSTD } from '../../helpers/closure/compression.ts';

describe('the zstd level', () => {
  it('rises as the measured link slows down', () => {
    expect(levelFor(200e6)).toBe(DEFAULT_LEVEL);
    expect(levelFor(25e6)).toBe(DEFAULT_LEVEL);
    expect(levelFor(12e6)).toBe(6);
    expect(levelFor(5e6)).toBe(9);
  });

  it('is what the compressor is started with', () => {
    expect(ZSTD.compress(6)).toEqual(['zstd', '-6', '-T0', '-q', '-c']);
    expect(ZSTD.compress()).toEqual(['zstd', `-${DEFAULT_LEVEL}`, '-T0', '-q', '-c']);
  });
});
