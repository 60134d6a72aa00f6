/** Small formatting helpers of the panel. */

/** "12 s", "5 min", "3 h", "2 d" since an ISO time (server clock vs ours: roughly). */
export function age(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return '';
  }
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h`;
  }
  return `${Math.floor(s / 86400)} d`;
}

/** 950, 1.2k, 34k, 1.5M */
export function tokens(n: number): string {
  if (n < 1000) {
    return String(n);
  }
  if (n < 1_000_000) {
    return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  }
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function seconds(s: number | null): string {
  if (s === null) {
    return '';
  }
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

export function usd(cost: number): string {
  return cost > 0 ? `$${cost < 0.01 ? cost.toFixed(4) : cost.toFixed(2)}` : '';
}

/** 512 B, 1.2 KB, 220 MB, 4.0 GB (powers of 1024) */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) {
    return `${Math.max(0, Math.round(n || 0))} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A session's total cost, "$0.00" when nothing was spent yet. */
export function cost(usdTotal: number | undefined): string {
  return usd(usdTotal ?? 0) || '$0.00';
}

/** "12% CPU", "220 MB / 4.0 GB" from what the provider measured ('' when unknown). */
export function resourceParts(resources: {
  cpu_percent?: number;
  memory_bytes?: number;
  memory_limit_bytes?: number | null;
}): { cpu: string; memory: string } {
  const cpu =
    typeof resources.cpu_percent === 'number'
      ? `${resources.cpu_percent < 10 ? resources.cpu_percent.toFixed(1) : Math.round(resources.cpu_percent)}% CPU`
      : '';
  let memory = '';
  if (typeof resources.memory_bytes === 'number') {
    memory = bytes(resources.memory_bytes);
    if (typeof resources.memory_limit_bytes === 'number') {
      memory += ` / ${bytes(resources.memory_limit_bytes)}`;
    }
  }
  return { cpu, memory };
}

/** The start of a session id (a UUID): enough to tell sessions apart. */
export function shortId(sessionId: string): string {
  return sessionId.slice(0, 8);
}

/** A main-area tab's title: what the session is called and the start of its id. */
export function sessionTitle(label: string, sessionId: string): string {
  const short = shortId(sessionId);
  return label && label !== sessionId ? `${label} · ${short}` : short;
}
