import type { MethodContext } from '../../src/index.ts';

export const description = 'A slow report, run in the background: answers 202 with a job id, reports progress, and its result is read from /jobs/<id>';
export const auth = 'session';
export const background = true;
export const params = {
  type: 'object',
  properties: { steps: { type: 'integer', minimum: 1, maximum: 100 }, stepMs: { type: 'integer', minimum: 0, maximum: 60000 } },
  required: ['steps'],
  additionalProperties: false,
} as const;
export const result = { type: 'object', properties: { steps: { type: 'integer' }, by: { type: 'string' } }, required: ['steps', 'by'] } as const;

export async function invoke(ctx: MethodContext, p: { steps: number; stepMs?: number }) {
  for (let step = 1; step <= p.steps; step++) {
    if (ctx.signal.aborted) throw new Error('stopped');
    await new Promise((resolve) => setTimeout(resolve, p.stepMs ?? 200));
    ctx.progress?.(step / p.steps, `step ${step} of ${p.steps}`);
  }
  return { steps: p.steps, by: ctx.session!.userId };
}
