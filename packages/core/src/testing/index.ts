export type { ContractOptions, StoreUnderTest } from './contract.ts';
export { describeEventStoreContract, newEvent } from './contract.ts';
export type { ThenSpec } from './decider-specification.ts';
export { DeciderSpecification } from './decider-specification.ts';
export { Priced, pricedGolden } from './priced.ts';
