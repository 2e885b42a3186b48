import http from 'node:http';
import https from 'node:https';
import type { Clock } from '../platform/clock.ts';
import type { Logger } from '../platform/logger.ts';
import type { BreakerRegistry, BreakerState } from '../platform/resilience/breakers.ts';
import { isCircuitOpenError } from '../platform/resilience/errors.ts';

export type Balancing = 'round_robin' | 'least_connections';

export interface PoolOptions {
  /** The service the members run (`autonomous`), as errors, metrics and breaker names show it. */
  readonly service: string;
  readonly urls: readonly string[];
  readonly balancing: Balancing;
  readonly healthCheck: {
    readonly path: string;
    /** 0 turns active checks off. */
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly healthyThreshold: number;
    readonly unhealthyThreshold: number;
  };
  readonly passive: { readonly failures: number; readonly ejectionMs: number };
  readonly breakers: BreakerRegistry;
  /** The breakers' `recovery_timeout`, to tell a client when an all-open pool may answer again. */
  readonly recoveryTimeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** One member as /health and tests see it. */
export interface MemberState {
  readonly url: string;
  /** Per the active health check (true until a check says otherwise). */
  readonly healthy: boolean;
  /** Taken out by passive ejection until this clock time; null when not ejected. */
  readonly ejected_until: number | null;
  readonly breaker: BreakerState;
  readonly in_flight: number;
}

/**
 * The members serving one service, which of them may take a request now, and the evidence that
 * decides it: active health checks, passive ejection after failed answers, a breaker per member.
 */
export interface UpstreamPool {
  readonly service: string;
  /** A member that may take a request now and is not in `exclude`; undefined when there is none. */
  pick(exclude: ReadonlySet<string>): string | undefined;
  /**
   * Counts a request in flight on `url` (for least-connections) until the returned function is
   * called; calling it again does nothing.
   */
  enter(url: string): () => void;
  /**
   * Sends one attempt to `url` under its breaker. `send` resolves with the status the member
   * answered, or undefined when nothing was sent (a refusal on our side, not the member's); it
   * rejects when the member did not answer. Rejects with CircuitOpenError, without calling `send`,
   * while the member's breaker is open.
   */
  call(url: string, send: () => Promise<number | undefined>): Promise<number | undefined>;
  /** Members that may take a request now. */
  available(): number;
  members(): MemberState[];
  /** Milliseconds until the first open breaker lets a trial through, when every member's breaker is open; undefined otherwise. */
  allOpenRetryAfterMs(): number | undefined;
  /** Starts the active health checks (no-op when the interval is 0). */
  start(): void;
  /** Stops the checks and aborts any in flight. */
  close(): void;
}

interface Member {
  readonly url: string;
  readonly breaker: string;
  healthy: boolean;
  passes: number;
  fails: number;
  /** Consecutive failed answers seen by traffic. */
  passiveFailures: number;
  ejectedUntil: number;
  inFlight: number;
}

/** Builds a pool; checks start with {@link UpstreamPool.start}. */
export function createUpstreamPool(options: PoolOptions): UpstreamPool {
  if (options.urls.length === 0) throw new Error(`the ${options.service} pool needs at least one url`);
  const { clock, logger, breakers, service } = options;
  const members: Member[] = options.urls.map((url) => ({
    url: url.replace(/\/+$/, ''),
    breaker: `gateway.upstream.${service}.${url.replace(/\/+$/, '')}`,
    healthy: true,
    passes: 0,
    fails: 0,
    passiveFailures: 0,
    ejectedUntil: 0,
    inFlight: 0,
  }));
  const byUrl = new Map(members.map((m) => [m.url, m]));
  const log = logger.child({ upstream: service });
  let cursor = 0;
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let closed = false;
  const checks = new AbortController();

  const usable = (m: Member): boolean => m.healthy && clock.now() >= m.ejectedUntil && breakers.state(m.breaker) !== 'open';
  const memberOf = (url: string): Member => {
    const member = byUrl.get(url);
    if (!member) throw new Error(`${url} is not a member of the ${service} pool`);
    return member;
  };

  const pick = (exclude: ReadonlySet<string>): string | undefined => {
    const start = cursor++;
    let best: Member | undefined;
    for (let i = 0; i < members.length; i++) {
      const m = members[(start + i) % members.length] as Member;
      if (exclude.has(m.url) || !usable(m)) continue;
      if (options.balancing === 'round_robin') return m.url;
      // Ties go to the first in round-robin order, so idle members still share the load.
      if (best === undefined || m.inFlight < best.inFlight) best = m;
    }
    return best?.url;
  };

  const failed = (m: Member, reason: string): void => {
    m.passiveFailures += 1;
    if (m.passiveFailures < options.passive.failures || clock.now() < m.ejectedUntil) return;
    // Like Envoy's ejection cap: traffic alone never empties the pool, or one bad answer pattern
    // shared by every member (a provider outage behind them) would turn into a total outage.
    if (!members.some((other) => other !== m && usable(other))) return;
    m.ejectedUntil = clock.now() + options.passive.ejectionMs;
    m.passes = 0;
    log.warn({ member: m.url, failures: m.passiveFailures, reason, ejection_ms: options.passive.ejectionMs }, 'upstream member ejected');
  };

  const call = async (url: string, send: () => Promise<number | undefined>): Promise<number | undefined> => {
    const m = memberOf(url);
    try {
      const status = await breakers.execute(m.breaker, send);
      if (status === undefined) return status;
      if (status >= 500) failed(m, `answered ${status}`);
      else m.passiveFailures = 0;
      return status;
    } catch (error) {
      if (!isCircuitOpenError(error)) failed(m, (error as Error).message);
      throw error;
    }
  };

  const probe = (m: Member): Promise<boolean> =>
    new Promise((resolve) => {
      const target = new URL(options.healthCheck.path, `${m.url}/`);
      const client = target.protocol === 'https:' ? https : http;
      // A fresh connection per check (no agent): nothing stays open between checks or after close.
      const request = client.get(target, { agent: false, signal: checks.signal, timeout: options.healthCheck.timeoutMs }, (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve(status >= 200 && status < 300);
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${options.healthCheck.timeoutMs} ms`)));
      request.on('error', () => resolve(false));
    });

  const record = (m: Member, passed: boolean): void => {
    if (passed) {
      m.fails = 0;
      m.passes += 1;
      const ejected = clock.now() < m.ejectedUntil;
      if ((!m.healthy || ejected) && m.passes >= options.healthCheck.healthyThreshold) {
        m.healthy = true;
        m.ejectedUntil = 0;
        m.passiveFailures = 0;
        log.info({ member: m.url }, 'upstream member healthy again');
      }
    } else {
      m.passes = 0;
      m.fails += 1;
      if (m.healthy && m.fails >= options.healthCheck.unhealthyThreshold) {
        m.healthy = false;
        log.warn({ member: m.url, failures: m.fails }, 'upstream member failed its health checks');
      }
    }
  };

  const round = async (): Promise<void> => {
    const results = await Promise.all(members.map((m) => probe(m)));
    if (closed) return;
    members.forEach((m, i) => record(m, results[i] as boolean));
    timer = setTimeout(() => void round(), options.healthCheck.intervalMs);
  };

  return {
    service,
    pick,
    enter(url) {
      const m = memberOf(url);
      m.inFlight += 1;
      let left = false;
      return () => {
        if (left) return;
        left = true;
        m.inFlight -= 1;
      };
    },
    call,
    available: () => members.filter(usable).length,
    members: () =>
      members.map((m) => ({
        url: m.url,
        healthy: m.healthy,
        ejected_until: clock.now() < m.ejectedUntil ? m.ejectedUntil : null,
        breaker: breakers.state(m.breaker),
        in_flight: m.inFlight,
      })),
    allOpenRetryAfterMs() {
      const snapshots = members.map((m) => breakers.get(m.breaker).snapshot());
      if (!snapshots.every((s) => s.state === 'open' && s.opened_at !== null)) return undefined;
      const reopen = Math.min(...snapshots.map((s) => Date.parse(s.opened_at as string) + options.recoveryTimeoutMs));
      return Math.max(0, reopen - clock.now());
    },
    start() {
      if (closed || started || options.healthCheck.intervalMs === 0) return;
      started = true;
      void round();
    },
    close() {
      closed = true;
      clearTimeout(timer);
      checks.abort();
    },
  };
}
