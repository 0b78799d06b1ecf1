// The scheduler's JSON-RPC over HTTP: /api/<method> with a `data` field holding JSON,
// answered by {"response": ...}. Paths are relative to the page so the UI works when
// luigid sits behind a reverse proxy under a URL prefix.

const API_ROOT = '../../api/';
const TASK_BROWSER = '../../ui/tasks';

// Calls that change scheduler state go out as POST so they are never issued by a
// prefetch, a crawler or an <img src>, and never cached. (With authentication on, luigid
// refuses them over GET; get_scheduler_message_response is one: it consumes the reply.)
const MUTATING = new Set([
  'disable_worker',
  'forgive_failures',
  'get_scheduler_message_response',
  'mark_as_done',
  'pause',
  're_enable_task',
  'send_scheduler_message',
  'set_worker_processes',
  'unpause',
  'update_resource',
]);

export class RpcError extends Error {
  constructor(method, status, detail) {
    super(`${method}: ${detail || 'HTTP ' + status}`);
    this.method = method;
    this.status = status;
  }
}

/** The response `send()` gets, or an RpcError naming `what`: unreachable, or the {"error"} of a 4xx/5xx. */
async function answer(what, send) {
  let resp;
  try {
    resp = await send();
  } catch (err) {
    throw new RpcError(what, 0, 'scheduler unreachable');
  }
  if (!resp.ok) {
    let detail = '';
    try {
      detail = (await resp.json()).error || '';
    } catch {
      detail = resp.statusText;
    }
    throw new RpcError(what, resp.status, detail);
  }
  return resp;
}

export async function rpc(method, args = {}) {
  const body = new URLSearchParams({data: JSON.stringify(args)});
  const url = API_ROOT + encodeURIComponent(method);
  const headers = {'X-Requested-With': 'luigid-visualiser'};
  const resp = await answer(method, () => MUTATING.has(method)
    ? fetch(url, {method: 'POST', body, headers, credentials: 'same-origin'})
    : fetch(url + '?' + body.toString(), {headers, credentials: 'same-origin', cache: 'no-store'}));
  const json = await resp.json();
  return json.response;
}

/** True when a task_list reply is a count ({"num_tasks": N}) rather than tasks. */
export function isCountReply(reply) {
  return reply !== null && typeof reply === 'object' && typeof reply.num_tasks === 'number'
    && Object.keys(reply).length === 1;
}

/** A {task_id: task} reply as an array of tasks that carry their id. */
export function taskArray(reply) {
  if (!reply || typeof reply !== 'object') return [];
  return Object.entries(reply).map(([id, task]) => ({...task, id}));
}

/**
 * luigid's own task-list endpoint (not part of luigi's API): counts, families and one page
 * of the view `query` describes (status, family, search, sort, offset, limit).
 */
export async function browseTasks(query) {
  const url = TASK_BROWSER + '?' + new URLSearchParams(query).toString();
  const resp = await answer('ui/tasks', () => fetch(url, {
    headers: {'X-Requested-With': 'luigid-visualiser'}, credentials: 'same-origin', cache: 'no-store',
  }));
  return resp.json();
}
