// Testground's sync service, in process: start it, point instances at it.
export { startSyncService, type SyncService, type SyncServiceOptions } from './server.ts';
export type { GcOptions } from './state.ts';
export { SyncClient, runKeys, type RunScope } from './client.ts';
