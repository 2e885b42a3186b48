import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, startProxyHarness, type ProxyHarness } from './proxy-harness.ts';

interface Served {
  /** When the request was sent and when its answer had arrived, ms after the run started. */
  readonly sent: number;
  readonly at: number;
  readonly status: number;
  readonly model: string | null;
  readonly attempts: number;
}

describe('health-aware routing: a provider going down mid-run', () => {
  let h: ProxyHarness;
  beforeAll(async () => {
    // Breakers open after 3 consecutive failures and let a trial call through 300 ms later.
    h = await startProxyHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('shifts traffic to the next model while its breaker is open and back after recovery, failing no request', async () => {
    const served: Served[] = [];
    const started = Date.now();
    let running = true;
    const client = async (): Promise<void> => {
      while (running) {
        const sent = Date.now() - started;
        const res = await h.chat(chatBody('auto', 'keep going'));
        await res.arrayBuffer();
        served.push({
          sent,
          at: Date.now() - started,
          status: res.status,
          model: res.headers.get('x-blocks-model'),
          attempts: Number(res.headers.get('x-blocks-attempts')),
        });
        await sleep(10);
      }
    };
    // Phases end on counts, not on fixed sleeps: a loaded machine serves fewer requests per second.
    // Sent after `from`, not merely answered after it: on a loaded machine an answer can come long after its request.
    const servedSince = (from: number) => served.filter((s) => s.sent > from).length;
    const until = async (done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`phase did not complete: ${served.length} served`);
        await sleep(20);
      }
    };
    const clients = [client(), client(), client(), client()];
    await until(() => served.length >= 10);
    const downAt = Date.now() - started;
    const before = h.fakes['fake-a'].requests.length;
    await h.fakes['fake-a'].down();
    await sleep(300);
    await until(() => servedSince(downAt + 300) > 25);
    const upAt = Date.now() - started;
    await h.fakes['fake-a'].up();
    await sleep(700);
    await until(() => servedSince(upAt + 700) > 15);
    running = false;
    await Promise.all(clients);

    expect(served.every((s) => s.status === 200)).toBe(true);
    expect(served.filter((s) => s.at < downAt).every((s) => s.model === 'alpha')).toBe(true);
    // Sent once the breakers had opened (3 failures well within 300 ms) and answered before the provider came back.
    const openedAt = downAt + 300;
    const outage = served.filter((s) => s.sent > openedAt && s.at < upAt);
    expect(outage.length).toBeGreaterThan(20);
    expect(outage.filter((s) => s.model !== 'beta')).toEqual([]);
    // Once the breakers opened, outage requests no longer tried alpha first: only a breaker's trial call did, and
    // it lets one through per recovery timeout (300 ms), however many requests the machine served meanwhile.
    const retried = outage.filter((s) => s.attempts > 1).length;
    const recoveryWindows = Math.floor((upAt - openedAt) / 300) + 1;
    expect(retried).toBeLessThanOrEqual(recoveryWindows);
    const breakers = h.blocks.platform.breakers.states().map((b) => b.name);
    expect(breakers).toEqual(expect.arrayContaining(['ai.model.alpha', 'ai.provider.fake-a', 'ai.deployment.alpha/default']));
    // Back after the recovery timeout: the last requests are alpha's again.
    const after = served.filter((s) => s.sent > upAt + 700);
    expect(after.length).toBeGreaterThan(10);
    expect(after.every((s) => s.model === 'alpha')).toBe(true);
    expect(h.blocks.platform.breakers.state('ai.model.alpha')).toBe('closed');
    // After recovery alpha answers again: the trial and everything after reached it.
    expect(h.fakes['fake-a'].requests.length - before).toBeGreaterThanOrEqual(after.length);
  });
});
