/** DOM helpers of the panel tests (jsdom). */

export async function until<T>(
  probe: () => T | null | undefined | false,
  what: string
): Promise<T> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const value = probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}: ${document.body.innerHTML.slice(0, 3000)}`
      );
    }
    await new Promise(r => setTimeout(r, 10));
  }
}

/** The element of a data-testid (the names the browser tests use). */
export function $(
  testid: string,
  root: ParentNode = document
): HTMLElement | null {
  return root.querySelector<HTMLElement>(`[data-testid="${testid}"]`);
}

export function $$(testid: string, root: ParentNode = document): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(`[data-testid="${testid}"]`)];
}

/** Type into a React-controlled input or textarea. */
export function type(
  field: HTMLTextAreaElement | HTMLInputElement,
  text: string
): void {
  const proto = Object.getPrototypeOf(field) as object;
  Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(field, text);
  field.dispatchEvent(new Event('input', { bubbles: true }));
}
