import { describeSyncStoreContract } from './sync-store.contract.ts';
import { describeEveryStore } from './sync-store.fixture.ts';

describeEveryStore(describeSyncStoreContract);
