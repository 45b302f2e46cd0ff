/**
 * The `webhook` healing action: POSTs the failure as JSON to a URL (a pager, a chat hook, a
 * ticketing system). Verified when the endpoint answered 2xx.
 *
 *   do: [{ action: webhook, options: { url: https://hooks.example/recovery, headers: { X-Token: … } } }]
 */
import os from 'node:os';
import { definePlugin } from '../../core/plugin.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { raError } from '../../core/errors.js';

export default definePlugin({
  id: 'webhook-action',
  contractVersion: '^1.0.0',
  provides: [HealingAction],
  register(ctx) {
    const delivered = new Set<string>();
    const action: HealingAction = {
      id: 'webhook',
      canHandle: () => true,
      async apply(failure, hctx) {
        const url = hctx.options.url;
        if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
          throw raError('RA_ERR_CONFIG', `webhook options.url must be an http(s) URL (got ${JSON.stringify(url)})`);
        }
        const headers = (hctx.options.headers ?? {}) as Record<string, string>;
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ host: os.hostname(), failure }),
          signal: hctx.signal,
        });
        await res.body?.cancel();
        if (!res.ok) throw raError('RA_ERR_USAGE', `webhook ${url} answered ${res.status} ${res.statusText}`);
        delivered.add(failure.id);
        return { summary: `POST ${url}: ${res.status}` };
      },
      // A notification cannot observe the failure going away: delivered is all it can say.
      async verify(failure) {
        return delivered.delete(failure.id) ? 'unobservable' : false;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});
