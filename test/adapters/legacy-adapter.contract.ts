import { describe, it } from 'vitest';
import {
  runLegacyAdapterContract,
  type LegacyAdapterFixture,
} from '../../src/testing/legacy-adapter-contract.ts';

export type { ContractRow, LegacyAdapterFixture } from '../../src/testing/legacy-adapter-contract.ts';

/**
 * The library's own adapters run the contract through the kit users run theirs through
 * (`runLegacyAdapterContract` from `medplum-dualwrite/testing`), with vitest's test functions.
 *
 * @param name - The adapter's name, for the describe block.
 * @param setup - Makes a fresh fixture for each case.
 * @example
 * ```ts
 * describeLegacyAdapterContract('MemoryLegacyAdapter', async () => ({ adapter: new MemoryLegacyAdapter(), resourceType: 'Patient' }));
 * ```
 */
export function describeLegacyAdapterContract(
  name: string,
  setup: () => Promise<LegacyAdapterFixture>,
): void {
  runLegacyAdapterContract({ describe, it }, name, setup);
}
