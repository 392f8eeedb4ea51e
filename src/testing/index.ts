/**
 * `medplum-dualwrite/testing`: the parts this library's own tests run on, for testing your
 * mappings and adapters under faults. An HTTP FHIR server on `@medplum/fhir-router` that a
 * real `MedplumClient` talks to, with fault injection, and an in-memory legacy adapter.
 *
 * @packageDocumentation
 */

export { startFhirTestServer } from './fhir-test-server.ts';
export type { FhirTestServer, FhirTestServerOptions } from './fhir-test-server.ts';
export { FhirTestRepository } from './fhir-test-repository.ts';
export type { FhirTestRepositoryOptions } from './fhir-test-repository.ts';
export { FaultInjector } from './fault-injector.ts';
export type { FaultResponse } from './fault-responses.ts';
export { WRITE_METHODS } from './fault-options.ts';
export type {
  FaultKind,
  FaultScope,
  ResponseFaultOptions,
  StatusFaultOptions,
  OutageOptions,
  LatencyRange,
  FaultInjectorOptions,
  FaultStats,
  InjectedFault,
  FaultDecision,
} from './fault-options.ts';
export { indexFhirDefinitions } from './fhir-definitions.ts';
export { MemoryLegacyAdapter } from './memory-legacy-adapter.ts';
export type { MemoryLegacyAdapterOptions, LegacyAdapterMethod } from './memory-legacy-adapter.ts';
export {
  runLegacyAdapterContract,
  checkLegacyAdapter,
  formatContractReport,
  legacyAdapterContractCases,
} from './legacy-adapter-contract.ts';
export type {
  ContractRow,
  LegacyAdapterFixture,
  ContractRunner,
  ContractCase,
  ContractReport,
} from './legacy-adapter-contract.ts';
export { checkMappingRoundTrip } from './mapping-round-trip.ts';
export type {
  RoundTripCheck,
  RoundTripFinding,
  RoundTripReport,
  RoundTripSamples,
} from './mapping-round-trip.ts';
