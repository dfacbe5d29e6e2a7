import { describe, expect, it } from 'vitest';
import { newRequestId, newSpan } from '../src/core/ids.ts';
import { parseTraceparent, traceOf } from '../src/core/trace.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRequestId()', () => {
  it('gives version 4 UUIDs, each its own string (the scratch they are spelled in is reused)', () => {
    const first = newRequestId();
    const ids = new Set([first]);
    // Past the 4 KB pool's refill, so ids from a refilled pool are checked too.
    for (let i = 0; i < 1000; i++) ids.add(newRequestId());
    expect(ids.size).toBe(1001);
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect([...ids][0]).toBe(first);
  });
});

describe('newSpan(traceId, flags)', () => {
  it('continues a given trace with a new span and the flags given', () => {
    const header = newSpan('4bf92f3577b34da6a3ce929d0e0e4736', '01');
    expect(header).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(parseTraceparent(header)).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
  });

  it('starts new traces: random, valid traceparent values, never repeating', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const header = newSpan(null, '00');
      expect(parseTraceparent(header)).not.toBeNull();
      seen.add(header.slice(3, 35));
    }
    expect(seen.size).toBe(500);
  });
});

describe('traceOf(headers)', () => {
  it('gives the trace id, the span id and the traceresponse header of one span', () => {
    const trace = traceOf({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    expect(trace.parentId).toBe('00f067aa0ba902b7');
    expect(trace.spanId).not.toBe('00f067aa0ba902b7');
    expect(trace.response).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${trace.spanId}-01`);
    const fresh = traceOf({});
    expect(fresh.response).toBe(`00-${fresh.traceId}-${fresh.spanId}-00`);
    expect(fresh.parentId).toBeNull();
  });
});
