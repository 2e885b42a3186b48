import { describe, expect, it } from 'vitest';
import { spawnBlocks } from '../../support/blocks-process.ts';

// The operator's own provider references are bounded by the operator's `secrets` too: one outside
// them stops `blocks start` with the setting named, instead of failing every call later.
describe('blocks start with provider credentials outside the secrets bounds', () => {
  it('exits naming ai.providers.<name>.credentials_ref and the bounds, for a reference outside them or bounds narrowed under it', async () => {
    const [outside, narrowed] = await Promise.allSettled([
      spawnBlocks(['autonomous'], { BLOCKS__ai__providers__openai__credentials_ref: 'env:PATH' }),
      spawnBlocks(['autonomous'], { BLOCKS__secrets__env: '["BLOCKS_SECRET_*"]' }),
    ]);
    expect(outside.status).toBe('rejected');
    expect(String((outside as PromiseRejectedResult).reason)).toMatch(
      /exited with 1:[\s\S]*ai\.providers\.openai\.credentials_ref: 'env:PATH' is not a variable secrets\.env allows \(allowed: \*_API_KEY, BLOCKS_SECRET_\*\) \(SECRET_REF_NOT_ALLOWED/,
    );
    expect(narrowed.status).toBe('rejected');
    expect(String((narrowed as PromiseRejectedResult).reason)).toMatch(
      /ai\.providers\.openai\.credentials_ref: 'env:OPENAI_API_KEY' is not a variable secrets\.env allows \(allowed: BLOCKS_SECRET_\*\)/,
    );
  }, 180_000); // two processes each open the database before the module refuses to start; the machine may be busy
});
