/**
 * A small seeded generator (mulberry32): tiny, fast and good enough to spread faults and plan
 * test scenarios reproducibly; not for anything cryptographic.
 *
 * @param seed - The seed.
 * @returns A function returning numbers in [0, 1), the same sequence for the same seed.
 * @example
 * ```ts
 * const random = mulberry32(42);
 * const coin = random() < 0.5;
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
