/** What jsdom lacks and Lumino/JupyterLab expect of a browser (no-op under node). */

if (typeof window !== 'undefined') {
  const g = globalThis as { [key: string]: unknown };
  if (!('DragEvent' in g)) {
    class DragEvent extends MouseEvent {
      readonly dataTransfer: DataTransfer | null = null;
    }
    g.DragEvent = DragEvent;
  }
  if (!('ResizeObserver' in g)) {
    g.ResizeObserver = class {
      observe(): void {}
      unobserve(): void {}
      disconnect(): void {}
    };
  }
  if (!('requestIdleCallback' in g)) {
    g.requestIdleCallback = (callback: () => void) => setTimeout(callback, 0);
    g.cancelIdleCallback = (handle: ReturnType<typeof setTimeout>) =>
      clearTimeout(handle);
  }
  if (!window.matchMedia) {
    window.matchMedia = (query: string) =>
      ({
        matches: false,
        media: query,
        onchange: null,
        addListener: () => undefined,
        removeListener: () => undefined,
        addEventListener: () => undefined,
        removeEventListener: () => undefined,
        dispatchEvent: () => false
      }) as MediaQueryList;
  }
}
