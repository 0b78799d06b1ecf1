// Formatting helpers shared by the views. All return plain strings.

export const STATUS_LABELS = {
  PENDING: 'Pending',
  RUNNING: 'Running',
  BATCH_RUNNING: 'Batch running',
  DONE: 'Done',
  FAILED: 'Failed',
  UPSTREAM_FAILED: 'Upstream failed',
  DISABLED: 'Disabled',
  UPSTREAM_DISABLED: 'Upstream disabled',
  UNKNOWN: 'Unknown',
  SUSPENDED: 'Suspended',
};

export function statusLabel(status) {
  return STATUS_LABELS[status] || String(status || 'Unknown');
}

/** A CSS class suffix for a status; only known names, so data never picks the class. */
export function statusClass(status) {
  return Object.prototype.hasOwnProperty.call(STATUS_LABELS, status) ? status.toLowerCase() : 'unknown';
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** Epoch seconds (as the scheduler reports them) to local 'YYYY-MM-DD HH:MM:SS'. */
export function formatTime(epochSeconds) {
  if (typeof epochSeconds !== 'number' || !isFinite(epochSeconds)) return '';
  const d = new Date(epochSeconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The date and the time-of-day parts of formatTime, for two-line display. */
export function formatTimeParts(epochSeconds) {
  const text = formatTime(epochSeconds);
  return text ? text.split(' ') : [];
}

export function formatNumber(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
}

/** 'a: 1, b: 2' for a resources dict. */
export function formatResources(resources) {
  if (!resources || typeof resources !== 'object') return '';
  return Object.entries(resources).map(([k, v]) => `${k}: ${v}`).join(', ');
}

/** What a task holds while running (the scheduler reports that apart), else what it needs. */
export function heldResources(t) {
  const running = t.resources_running;
  if (running && typeof running === 'object' && Object.keys(running).length) return running;
  return t.resources;
}

/** A progress value clamped to 0..100, or null when the task reports none. */
export function progressValue(p) {
  const n = typeof p === 'string' ? parseFloat(p) : p;
  if (typeof n !== 'number' || !isFinite(n)) return null;
  return Math.max(0, Math.min(100, n));
}

/**
 * Worker error text may arrive JSON-encoded (older clients encode it) or raw.
 * Decode when it is a JSON string, otherwise keep it as is.
 */
export function decodeError(error) {
  if (typeof error !== 'string') return error === null || error === undefined ? '' : String(error);
  try {
    const decoded = JSON.parse(error);
    return typeof decoded === 'string' ? decoded : error;
  } catch {
    return error;
  }
}
