/**
 * `POST /cluster/switchover` `{ to, timeoutMs? }` (write: needs the agent's token): runs a planned
 * switchover on this member (switchover.ts) and answers when it ended. The status says how:
 * 200 done (`{ switchover }`, the target leads); 409 `RA_ERR_CLUSTER_NOT_LEADER` with `leader`
 * (who is, and its httpAddress, so the CLI can forward) or a refusal that changed nothing (busy,
 * target not streaming, leadership lost); 404 no such live member; 504 the target did not catch
 * up (this member resumed as the leader) or did not take over in time. Every refusal has
 * `{ error: { code, message }, kind, switchover }`.
 */
import type { HttpResponse, HttpRoute } from '../../core/contracts/HttpRoute.js';
import { RecoveryAgentError } from '../../core/errors.js';
import type { RefusalKind, SwitchoverRecord } from './switchover.js';

/** What the routes need of a Switchover. */
export interface SwitchoverView {
  last(): SwitchoverRecord | null;
  run(to: string, timeoutMs: number): Promise<SwitchoverRecord>;
}

const STATUS: Record<RefusalKind, number> = {
  'not-leader': 409,
  'unknown-member': 404,
  busy: 409,
  'not-streaming': 409,
  'lost-leadership': 409,
  'not-caught-up': 504,
  'no-takeover': 504,
};

export const DEFAULT_SWITCHOVER_TIMEOUT_MS = 30_000;

export function switchoverRoute(s: SwitchoverView): HttpRoute {
  return {
    method: 'POST',
    path: '/cluster/switchover',
    access: 'write',
    schema: {
      body: {
        type: 'object',
        required: ['to'],
        additionalProperties: false,
        properties: { to: { type: 'string', minLength: 1, maxLength: 63 }, timeoutMs: { type: 'integer', minimum: 100, maximum: 600_000 } },
      },
    },
    async handler(req): Promise<HttpResponse> {
      const body = req.body as { to: string; timeoutMs?: number };
      try {
        return { status: 200, body: { switchover: await s.run(body.to, body.timeoutMs ?? DEFAULT_SWITCHOVER_TIMEOUT_MS) } };
      } catch (err) {
        if (!(err instanceof RecoveryAgentError)) throw err;
        const kind = (err.details.kind as RefusalKind | undefined) ?? 'lost-leadership';
        return {
          status: STATUS[kind] ?? 409,
          body: { error: { code: err.code, message: err.message }, kind, leader: err.details.leader ?? null, switchover: err.details.switchover ?? null },
        };
      }
    },
  };
}
