import { InvalidInputError } from '../errors.ts';
import type { TableSettings } from './postgres-table-schema.ts';

/**
 * The tables a table adapter writes, looked up in the database's catalog at the first call for
 * each resource type and kept. A lookup that fails (the database is down, the table is not
 * created yet) is forgotten, so the next call tries again.
 *
 * @internal
 * @example
 * ```ts
 * const schemas = new TableSchemas(settings, (table) => discoverMysqlTable(pool, table));
 * const schema = await schemas.of('Patient');
 * ```
 */
export class TableSchemas<S> {
  readonly #settings: ReadonlyMap<string, TableSettings>;
  readonly #discover: (settings: TableSettings) => Promise<S>;
  readonly #pending = new Map<string, Promise<S>>();
  readonly #found: Map<string, S>;

  /**
   * @param settings - Each resource type's validated table settings.
   * @param discover - Looks one table up.
   * @param found - Tables already looked up, shared with other lookups of the same tables (a
   *   lookup on another connection never waits for this one's).
   */
  constructor(
    settings: ReadonlyMap<string, TableSettings>,
    discover: (settings: TableSettings) => Promise<S>,
    found = new Map<string, S>(),
  ) {
    this.#settings = settings;
    this.#discover = discover;
    this.#found = found;
  }

  /** The resource types that have a table. */
  get resourceTypes(): string[] {
    return [...this.#settings.keys()];
  }

  /** Tables already looked up, to share with another {@link TableSchemas} of the same tables. */
  get found(): Map<string, S> {
    return this.#found;
  }

  /**
   * The table of a resource type.
   *
   * @param resourceType - The resource type.
   * @returns Its table, looked up once.
   * @throws {@link InvalidInputError} naming `resourceType` when it has no table.
   */
  of(resourceType: string): Promise<S> {
    const settings = this.#settings.get(resourceType);
    if (settings === undefined) {
      return Promise.reject(
        new InvalidInputError(
          'resourceType',
          `no table is configured for ${JSON.stringify(resourceType)} (configured: ${this.resourceTypes.join(', ')})`,
          { side: 'legacy', resourceType },
        ),
      );
    }
    const known = this.#found.get(resourceType);
    if (known !== undefined) return Promise.resolve(known);
    let schema = this.#pending.get(resourceType);
    if (schema === undefined) {
      schema = this.#discover(settings);
      const pending = schema;
      pending.then(
        (found) => this.#found.set(resourceType, found),
        () => {
          if (this.#pending.get(resourceType) === pending) this.#pending.delete(resourceType);
        },
      );
      this.#pending.set(resourceType, schema);
    }
    return schema;
  }
}
