/**
 * Fixed test ports (a fixed port keeps a page's origin, and so its IndexedDB, across reloads).
 * `EDGELOG_TEST_PORT_BASE` moves them all, so two checkouts can run their tests side by side.
 */
const base = Number(process.env.EDGELOG_TEST_PORT_BASE ?? 8790);

export function testPort(offset: number): number {
  return base + offset;
}
