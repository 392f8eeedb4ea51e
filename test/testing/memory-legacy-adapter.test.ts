import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.ts';
import { MemoryLegacyAdapter } from '../../src/testing/memory-legacy-adapter.ts';

interface Row {
  id?: string | number;
  patientId?: string;
  name: string;
}

describe('MemoryLegacyAdapter', () => {
  describe('failNext', () => {
    it('fails the next calls with a retryable error before they change anything', async () => {
      const legacy = new MemoryLegacyAdapter<Row>();
      legacy.failNext(2);
      await expect(legacy.create('Patient', { id: 'p', name: 'Ada' })).rejects.toMatchObject({
        retryable: true,
      });
      await expect(legacy.read('Patient', 'p')).rejects.toBeInstanceOf(Error);
      expect(await legacy.read('Patient', 'p')).toBeUndefined();
      expect((await legacy.changesSince('Patient', undefined, 10)).changes).toEqual([]);
    });

    it('throws the given error instead, and a count of 0 cancels pending failures', async () => {
      const legacy = new MemoryLegacyAdapter<Row>();
      const refused = Object.assign(new Error('refused'), { retryable: false });
      legacy.failNext(1, refused);
      await expect(legacy.create('Patient', { name: 'Ada' })).rejects.toBe(refused);
      legacy.failNext(3);
      legacy.failNext(0);
      await expect(legacy.create('Patient', { name: 'Ada' })).resolves.toMatchObject({ id: '1' });
    });

    it('rejects a count that is not a non-negative integer', () => {
      expect(() => new MemoryLegacyAdapter<Row>().failNext(-1)).toThrow(InvalidInputError);
    });
  });

  it('counts calls per method, failed ones included', async () => {
    const legacy = new MemoryLegacyAdapter<Row>();
    const before = legacy.calls;
    legacy.failNext(1);
    await legacy.create('Patient', { name: 'Ada' }).catch(() => undefined);
    await legacy.create('Patient', { name: 'Ada' });
    await legacy.read('Patient', '1');
    await legacy.delete('Patient', '1');
    expect(legacy.calls).toEqual({ create: 2, update: 0, delete: 1, read: 1, changesSince: 0, scan: 0 });
    expect(before.create).toBe(0);
  });

  it('feeds deletes along with upserts, each write at its own position', async () => {
    const legacy = new MemoryLegacyAdapter<Row>();
    const created = await legacy.create('Patient', { name: 'Ada' });
    await legacy.update('Patient', created.id, { name: 'Ada L.' });
    await legacy.delete('Patient', created.id);
    const { changes } = await legacy.changesSince('Patient', undefined, 10);
    expect(changes.map((change) => [change.kind, change.record?.row.name])).toEqual([
      ['upsert', 'Ada'],
      ['upsert', 'Ada L.'],
      ['delete', undefined],
    ]);
  });

  it('keeps ids in the configured field and skips ids callers already took', async () => {
    const legacy = new MemoryLegacyAdapter<Row>({ idField: 'patientId' });
    await legacy.create('Patient', { patientId: '1', name: 'Ada' });
    const assigned = await legacy.create('Patient', { name: 'Grace' });
    expect(assigned.id).toBe('2');
    expect(assigned.row).toEqual({ patientId: '2', name: 'Grace' });
  });

  it('keeps a given id value as given', async () => {
    const legacy = new MemoryLegacyAdapter<Row>();
    expect((await legacy.create('Patient', { id: 7, name: 'Ada' })).row.id).toBe(7);
    expect((await legacy.update('Patient', '7', { id: 7, name: 'Ada L.' })).row.id).toBe(7);
  });

  it('copies rows in and out, so callers cannot change what is stored', async () => {
    const legacy = new MemoryLegacyAdapter<Row>();
    const row: Row = { name: 'Ada' };
    const created = await legacy.create('Patient', row);
    row.name = 'changed';
    created.row.name = 'changed too';
    expect((await legacy.read('Patient', created.id))?.row.name).toBe('Ada');
  });
});
