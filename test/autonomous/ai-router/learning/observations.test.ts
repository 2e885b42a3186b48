import { describe, expect, it } from 'vitest';
import {
  attemptSuccess,
  callObservations,
  feedbackObservation,
  parseCallEvent,
  parseRecordedOutcome,
} from '../../../../src/autonomous/ai-router/learning/observations.ts';
import { calibrationOf } from '../../../../src/autonomous/ai-router/learning/calibration.ts';

const event = (payload: Record<string, unknown>) => ({
  event_id: '0195d1c0-0000-7000-8000-000000000001',
  event_type: 'ai.request.completed',
  source_service: 'autonomous.ai-router',
  target_services: [],
  payload,
  timestamp: '2026-11-25T12:00:00.000Z',
  correlation_id: 'c',
  version: '1.0',
});

const payload = {
  request_id: '0195d1c0-0000-7000-8000-000000000002',
  decision_id: null,
  tenant: 'acme',
  model: 'b',
  task_type: 'code',
  complexity: 'high',
  confidence: 0.8,
  cached: false,
  attempts: [
    { model: 'a', outcome: 'PROVIDER_TIMEOUT', kind: 'timeout', latency_ms: 60000 },
    { model: 'x', outcome: 'PROVIDER_RATE_LIMITED', kind: 'rate_limited', latency_ms: 3 },
    { model: 'y', outcome: 'PROVIDER_BAD_REQUEST', kind: 'client', latency_ms: 3 },
    { model: 'z', outcome: 'PROVIDER_UNREACHABLE', kind: 'unreachable', latency_ms: 1 },
    { model: 'w', outcome: 'PROVIDER_BAD_RESPONSE', kind: 'bad_response', latency_ms: 5 },
    { model: 'v', outcome: 'PROVIDER_SERVER_ERROR', kind: 'server', latency_ms: 5 },
    { model: 'b', outcome: 'success', kind: null, latency_ms: 420 },
  ],
};

describe('what a proxied call teaches', () => {
  it('scores each attempt: success 1, failures of the model 0, rate limits and client errors nothing', () => {
    const parsed = parseCallEvent(event(payload));
    expect(parsed.attempts.map(attemptSuccess)).toEqual([0, null, null, 0, 0, 0, 1]);
    const observations = callObservations(parsed);
    expect(observations.map((o) => [o.model, o.success, o.latencyMs])).toEqual([
      ['a', 0, null],
      ['z', 0, null],
      ['w', 0, null],
      ['v', 0, null],
      ['b', 1, 420],
    ]);
    expect(observations.every((o) => o.evidence === 'call' && o.taskType === 'code' && o.complexity === 'high')).toBe(true);
    // Only the calling tenant's estimates learn from it; an event from before events named one is the default tenant's.
    expect(observations.every((o) => o.tenant === 'acme')).toBe(true);
    expect(callObservations(parseCallEvent(event({ ...payload, tenant: undefined })))[0]?.tenant).toBe('default');
    expect(observations[0]?.at).toBe(Date.parse('2026-11-25T12:00:00.000Z'));
  });

  it('learns nothing from a cached answer', () => {
    expect(callObservations(parseCallEvent(event({ ...payload, cached: true })))).toEqual([]);
  });

  it('teaches a feedback outcome to the tenant that gave it, and refuses one that names no tenant', () => {
    const recorded = {
      id: '0195d1c0-0000-7000-8000-000000000003',
      decision_id: '0195d1c0-0000-7000-8000-000000000004',
      source: 'feedback',
      tenant: 'acme',
      model: 'a',
      task_type: 'code',
      complexity: 'low',
      success: false,
      quality_score: null,
      latency_ms: 300,
      recorded_at: '2026-11-25T12:00:00.000Z',
    };
    const observation = feedbackObservation(parseRecordedOutcome({ ...event(recorded), event_type: 'ai.outcome.recorded' }));
    expect(observation).toMatchObject({ tenant: 'acme', evidence: 'outcome', model: 'a', success: 0, latencyMs: 300 });
    expect(() => parseRecordedOutcome(event({ ...recorded, tenant: undefined }))).toThrow(/recorded outcome/);
  });

  it('refuses an event without the fields it learns from', () => {
    expect(() => parseCallEvent(event({ ...payload, complexity: 'extreme' }))).toThrow(/complexity/);
    expect(() => parseCallEvent(event({ ...payload, model: undefined }))).toThrow(/model/);
    expect(() => parseCallEvent({ nope: true })).toThrow(/SystemEvent/);
  });
});

describe('calibration measures', () => {
  it('computes bins, Brier score and expected calibration error from per-bin sums', () => {
    // Bin 8 (0.8..0.9): confidences 0.8, 0.8, 0.8, 0.8 with 2 successes; bin 2: 0.2 once, failed.
    const sums = [
      { bin: 2, n: 1, confidence: 0.2, successes: 0, squaredError: 0.04 },
      { bin: 8, n: 4, confidence: 3.2, successes: 2, squaredError: 2 * 0.04 + 2 * 0.64 },
    ];
    const c = calibrationOf(sums, 10);
    expect(c.outcomes).toBe(5);
    expect(c.brier_score).toBeCloseTo((0.04 + 0.08 + 1.28) / 5, 6);
    // (1/5)·|0.2 − 0| + (4/5)·|0.8 − 0.5|
    expect(c.expected_calibration_error).toBeCloseTo(0.2 * 0.2 + 0.8 * 0.3, 6);
    expect(c.bins).toHaveLength(10);
    expect(c.bins[8]).toEqual({ from: 0.8, to: 0.9, outcomes: 4, mean_confidence: 0.8, success_rate: 0.5 });
    expect(c.bins[0]).toEqual({ from: 0, to: 0.1, outcomes: 0, mean_confidence: null, success_rate: null });
  });

  it('has no scores without outcomes', () => {
    expect(calibrationOf([], 4)).toMatchObject({ outcomes: 0, brier_score: null, expected_calibration_error: null });
  });
});
