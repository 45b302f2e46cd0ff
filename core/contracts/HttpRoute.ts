import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/**
 * An HTTP endpoint a plugin contributes to the agent's API (`POST /scans` from the corruption
 * detector, `GET /snapshots` from the snapshot manager…). The core mounts every running
 * plugin's routes, checks the caller's token for them as for its own, and refuses two routes
 * with one method and path (naming both plugins), so the API is the sum of what runs.
 *
 * The contract knows no web framework: a handler gets the parsed request and answers a status
 * and a JSON body.
 */

/**
 * Who may call a route, checked before its body is read:
 * - `open`: anyone (load balancers, Prometheus).
 * - `read`: needs `Authorization: Bearer <agent.http.token>` once a token is set; open without
 *   one (which the config allows only on loopback, or with allowUnauthenticatedRemote).
 * - `write`: needs the token; refused (403) while none is set.
 */
export type HttpAccess = 'open' | 'read' | 'write';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a handler is given. */
export interface HttpRequest {
  /** The parsed JSON body (undefined without one). */
  readonly body: unknown;
  /** The query string, parsed (`?store=a` is `{ store: 'a' }`). */
  readonly query: Readonly<Record<string, unknown>>;
  /** Path parameters (`/snapshots/:id`). */
  readonly params: Readonly<Record<string, string>>;
  /** The caller's address. */
  readonly ip: string;
}

/** What a handler answers: sent as JSON. */
export interface HttpResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface HttpRoute {
  readonly method: HttpMethod;
  /** Starts with `/`; Fastify's syntax for parameters (`/snapshots/:id`). */
  readonly path: string;
  /** Who may call it (see HttpAccess); a method other than GET changes something, and must be `write`. */
  readonly access: HttpAccess;
  /**
   * Optional JSON Schemas the request must match before the handler runs; a request that does
   * not gets 400 `{ error }` naming the field.
   */
  readonly schema?: { readonly body?: object; readonly querystring?: object };
  /**
   * Answers the request. A throw of RA_ERR_USAGE answers 400 `{ error }` (a bad parameter);
   * another recovery-agent error 500 `{ error, code }`; anything else 500.
   */
  handler(req: HttpRequest): HttpResponse | Promise<HttpResponse>;
}

/** Token under which plugins provide their `HttpRoute`s, any number each. */
export const HttpRoute: InjectionToken<HttpRoute> = createToken<HttpRoute>('recovery-agent.HttpRoute');

const METHODS: ReadonlySet<string> = new Set<HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const ACCESS: ReadonlySet<string> = new Set<HttpAccess>(['open', 'read', 'write']);

/** Runtime guard: true when `v` implements `HttpRoute`. */
export function isHttpRoute(v: unknown): v is HttpRoute {
  const r = v as HttpRoute | null;
  return (
    typeof r === 'object' && r !== null && METHODS.has(r.method) && typeof r.path === 'string' && r.path.startsWith('/') &&
    ACCESS.has(r.access) && (r.method === 'GET' || r.access === 'write') && typeof r.handler === 'function' &&
    (r.schema === undefined || (typeof r.schema === 'object' && r.schema !== null))
  );
}
