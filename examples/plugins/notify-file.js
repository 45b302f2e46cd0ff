// An example third-party plugin: a healing action that appends one JSON line per failure to a
// file, e.g. for a log shipper to pick up. Load it from the config:
//
//   plugins:
//     - module: ./plugins/notify-file.js
//       options: { path: ./var/notifications.log, kinds: [process-crash] }
//
// and name it in a healing rule: `do: [notify-file]`.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { definePlugin, HealingAction, isHealingAction } from 'recovery-agent';

export default definePlugin({
  id: 'notify-file',
  contractVersion: '^1.0.0',
  provides: [HealingAction],
  register(ctx) {
    const file = ctx.options.path;
    if (typeof file !== 'string' || file.length === 0) {
      throw new Error(`options.path must be the file to append to (got ${JSON.stringify(file)})`);
    }
    const kinds = ctx.options.kinds;
    if (kinds !== undefined && !(Array.isArray(kinds) && kinds.every((k) => typeof k === 'string'))) {
      throw new Error(`options.kinds must be a list of failure kinds (got ${JSON.stringify(kinds)})`);
    }
    // Relative to the config file, like every other path in it.
    const target = path.resolve(ctx.config.source ? path.dirname(ctx.config.source) : process.cwd(), file);

    /** @type {import('recovery-agent').HealingAction} */
    const action = {
      id: 'notify-file',
      canHandle: (failure) => kinds === undefined || kinds.includes(failure.kind),
      async apply(failure) {
        await mkdir(path.dirname(target), { recursive: true });
        const line = { at: new Date().toISOString(), failureId: failure.id, kind: failure.kind, priority: failure.priority, subject: failure.subject, evidence: failure.evidence };
        await appendFile(target, JSON.stringify(line) + '\n');
        return { summary: `appended ${failure.kind} to ${target}` };
      },
      async verify(failure) {
        const text = await readFile(target, 'utf8').catch(() => '');
        return text.split('\n').some((l) => l.includes(`"failureId":${JSON.stringify(failure.id)}`));
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
    ctx.log.info({ target }, 'notify-file ready');
  },
});
