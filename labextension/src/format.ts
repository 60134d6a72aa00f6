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
