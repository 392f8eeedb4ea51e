import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  CutoverPlan,
  DualWriter,
  InvalidInputError,
  MappingError,
  MirrorError,
  RejectedError,
  createMedplumClient,
} from '../../src/index.ts';
import { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function nothingWritten(
  f: WriterFixture<MemoryLegacyAdapter<PatientRow>>,
  legacyId: string,
): Promise<void> {
  expect(await f.legacy.read('Patient', legacyId)).toBeUndefined();
  expect(await medplumCopies(f.direct, legacyId)).toHaveLength(0);
  expect(await f.writer.linkOf('Patient', legacyId)).toBeUndefined();
}

describe('bad input', () => {
  it('an unknown resource type is an InvalidInputError naming the type, and nothing is written', async () => {
    fixture = await startWriterFixture();
    const error = await fixture.writer
      .create('Patinet', { id: 'x-1', first_name: 'A', last_name: 'B' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'type', retryable: false });
    expect((error as Error).message).toContain('Patient');
    await nothingWritten(fixture, 'x-1');
  });

  it('a row the mapping rejects is a MappingError naming the field, and nothing is written on either side', async () => {
    for (const stage of ['dual-write', 'live'] as const) {
      fixture = await startWriterFixture({ stage });
      const error = await fixture.writer
        .create('Patient', { id: 'x-2', first_name: 'A', last_name: '' }, north)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MappingError);
      expect(error).toMatchObject({ field: 'last_name', resourceType: 'Patient' });
      await nothingWritten(fixture, 'x-2');
      await fixture.close();
      fixture = undefined;
    }
  });

  it('an update the mapping rejects leaves both sides at their previous state', async () => {
    fixture = await startWriterFixture();
    const { writer, legacy, direct } = fixture;
    await writer.create('Patient', { id: 'x-3', first_name: 'A', last_name: 'Before' }, north);
    await expect(
      writer.update('Patient', 'x-3', { id: 'x-3', first_name: 'A', last_name: '' }, north),
    ).rejects.toBeInstanceOf(MappingError);
    expect((await legacy.read('Patient', 'x-3'))?.row.last_name).toBe('Before');
    expect((await medplumCopies(direct, 'x-3'))[0]?.name?.[0]?.family).toBe('Before');
  });

  it('a resource without the identifier system is rejected while Medplum is the authority, naming resource.identifier', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const error = await fixture.writer
      .createResource(
        {
          resourceType: 'Patient',
          identifier: [{ system: 'urn:other', value: '1' }],
          name: [{ family: 'X' }],
        },
        north,
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'resource.identifier' });
    expect(fixture.legacy.calls.create).toBe(0);
    expect(await fixture.direct.searchResources('Patient', {}, { cache: 'no-cache' })).toHaveLength(0);
  });

  it('a 400 from Medplum fails at once with a RejectedError naming the field', async () => {
    fixture = await startWriterFixture({ stage: 'live' });
    const requestsBefore = fixture.server.requests;
    const error = await fixture.writer
      .create('Patient', { id: 'x-4', first_name: 'A', last_name: 'B', birth_date: '10/12/1815' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ status: 400, attempts: 1, side: 'medplum', fields: ['Patient.birthDate'] });
    // One conditional create, not retried: a permanent error fails at once.
    expect(fixture.server.requests - requestsBefore).toBe(1);
    await nothingWritten(fixture, 'x-4');
  });

  it('a 400 on the mirror surfaces as a MirrorError whose cause names the field', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const error = await fixture.writer
      .create('Patient', { id: 'x-5', first_name: 'A', last_name: 'B', birth_date: 'yesterday' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as MirrorError).cause).toMatchObject({
      name: 'RejectedError',
      status: 400,
      fields: ['Patient.birthDate'],
    });
    expect(error).toMatchObject({ retryable: false, status: 400 });
  });

  it('a dead letter keeps the field paths a Medplum 400 named, never the value', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { mirror: 'async' } });
    await fixture.writer.create(
      'Patient',
      { id: 'x-7', first_name: 'A', last_name: 'B', birth_date: 'Zqx-yesterday' },
      north,
    );
    expect(await fixture.writer.drain({ timeoutMs: 30_000 })).toMatchObject({ deadLettered: 1 });
    const [letter] = await fixture.store.listDeadLetters();
    expect(letter?.reason).toMatchObject({ status: 400, side: 'medplum', fields: ['Patient.birthDate'] });
    expect(JSON.stringify(letter)).not.toContain('Zqx');
  });

  it('a MirrorError names the side the mirror wrote to and the field paths at fault, never values', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write' });
    const error = await fixture.writer
      .create('Patient', { id: 'x-6', first_name: 'A', last_name: 'B', birth_date: 'yesterday' }, north)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect(error).toMatchObject({ target: 'medplum', side: 'medplum', fields: ['Patient.birthDate'] });
    expect(JSON.stringify(error)).not.toContain('yesterday');
    // A mapping that refused the record (no side of its own): the target is the side, its field the one.
    const written = { resourceType: 'Patient', authority: 'medplum', legacyId: '7' } as const;
    const mapping = new MirrorError(written as never, new MappingError('gender', 'has no legacy code'));
    expect(mapping).toMatchObject({ target: 'legacy', side: 'legacy', fields: ['gender'] });
    // A cause that names no field: none.
    const unknown = new MirrorError(written as never, new RejectedError('refused', []));
    expect(unknown.fields).toEqual([]);
  });

  it('rejects rows, ids and contexts a hurried caller might pass', async () => {
    fixture = await startWriterFixture();
    const { writer } = fixture;
    await expect(writer.create('Patient', null as unknown as PatientRow, north)).rejects.toMatchObject({
      name: 'InvalidInputError',
      field: 'row',
    });
    await expect(writer.create('Patient', [] as unknown as PatientRow, north)).rejects.toMatchObject({
      field: 'row',
    });
    await expect(
      writer.update('Patient', '', { first_name: 'A', last_name: 'B' }, north),
    ).rejects.toMatchObject({ field: 'legacyId' });
    await expect(
      writer.update('Patient', 'a', { id: 'b', first_name: 'A', last_name: 'B' }, north),
    ).rejects.toMatchObject({
      name: 'MappingError',
      field: 'legacyId',
    });
    await expect(writer.read('Patient', undefined as unknown as string, north)).rejects.toMatchObject({
      field: 'legacyId',
    });
    await expect(
      writer.create('Patient', { first_name: 'A', last_name: 'B' }, { unit: '' }),
    ).rejects.toMatchObject({ field: 'ctx' });
    await expect(
      writer.updateResource({ resourceType: 'Patient', name: [{ family: 'X' }] }, north),
    ).rejects.toMatchObject({
      field: 'resource.identifier',
    });
    expect(fixture.legacy.calls.create + fixture.legacy.calls.update).toBe(0);
  });

  it('an update of a record that does not exist is a 404 RejectedError, and nothing is created', async () => {
    fixture = await startWriterFixture();
    const error = await fixture.writer
      .update('Patient', 'ghost', { first_name: 'A', last_name: 'B' }, north)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'RejectedError', status: 404, side: 'legacy' });
    await nothingWritten(fixture, 'ghost');
  });
});

describe('bad options', () => {
  const base = () => ({
    legacy: new MemoryLegacyAdapter<PatientRow>(),
    medplum: createMedplumClient({ baseUrl: 'http://127.0.0.1:1/' }),
    mappings: [patientMapping],
    plan: new CutoverPlan<{ unit: string }>({ default: 'dual-write', unitOf: (c) => c.unit }),
  });

  it('names the option and the problem', () => {
    expect(() => new DualWriter({ ...base(), mappings: [] })).toThrow(/mappings: must be a non-empty array/);
    expect(() => new DualWriter({ ...base(), mappings: [patientMapping, patientMapping] })).toThrow(
      /mappings\[1\]\.resourceType: is mapped twice/,
    );
    expect(
      () => new DualWriter({ ...base(), mappings: [{ ...patientMapping, identifierSystem: '' }] }),
    ).toThrow(/mappings\[0\]\.identifierSystem/);
    expect(() => new DualWriter({ ...base(), legacy: {} as never })).toThrow(/legacy\.create/);
    expect(() => new DualWriter({ ...base(), retry: { retries: -2 } })).toThrow(/retry\.retries/);
    expect(() => new DualWriter({ ...base(), linkCacheSize: 0 })).toThrow(ConfigurationError);
  });

  it('names the conflict, sink, hashing and divergence option at fault', () => {
    expect(() => new DualWriter({ ...base(), resolver: 'authority' as never })).toThrow(
      /^resolver: must be a function/,
    );
    expect(() => new DualWriter({ ...base(), baseSnapshot: 'none' as never })).toThrow(
      /baseSnapshot: must be 'full' or 'hash-only'/,
    );
    expect(() => new DualWriter({ ...base(), sinks: [{}] as never })).toThrow(
      /sinks\[0\]\.handle: must be a function/,
    );
    expect(() => new DualWriter({ ...base(), valueHash: { key: '' } })).toThrow(/valueHash\.key/);
    expect(() => new DualWriter({ ...base(), divergence: { verifySampleRate: -1 } })).toThrow(
      /divergence\.verifySampleRate: must be a number from 0 to 1 \(got -1\)/,
    );
    expect(() => new DualWriter({ ...base(), divergence: { shadowReads: { sampleRate: 2 } } })).toThrow(
      /divergence\.shadowReads\.sampleRate/,
    );
    expect(
      () => new DualWriter({ ...base(), divergence: { shadowReads: { budgetMs: Number.NaN } } }),
    ).toThrow(/divergence\.shadowReads\.budgetMs/);
    expect(() => new DualWriter({ ...base(), valueHash: { secret: 'k' } as never })).toThrow(
      /valueHash\.secret: is not an option/,
    );
    expect(() => new DualWriter({ ...base(), feeds: { unitOf: () => 'north', pageSize: 0 } })).toThrow(
      /^feeds\.pageSize: must be an integer/,
    );
    expect(() => new DualWriter({ ...base(), readiness: { windowMs: 0 } })).toThrow(
      /readiness\.windowMs: must be a positive number/,
    );
  });

  it('drainer and retry options a hurried user might pass are refused, naming the field', () => {
    const plan = new CutoverPlan<{ unit: string }>({ default: 'dual-write', unitOf: (c) => c.unit });
    const refused: [unknown, RegExp][] = [
      [{ bundle: 0 }, /drainer\.bundle.*positive integer/],
      [{ bundle: 2.5 }, /drainer\.bundle/],
      [{ bundle: '16' }, /drainer\.bundle/],
      ['fast', /drainer.*must be an object/],
      [null, /drainer.*must be an object/],
      [{ backoff: 'x' }, /drainer\.backoff.*must be an object/],
      [{ backoff: null }, /drainer\.backoff.*must be an object/],
      // Typos are refused, not ignored with the default taking their place.
      [{ concurency: 8 }, /drainer\.concurency.*is not an option/],
      [{ backoff: { min: 5 } }, /drainer\.backoff\.min.*is not an option/],
      // A Map has no properties: it would pass for no options at all.
      [new Map([['concurrency', 0]]), /drainer.*must be an object/],
    ];
    // At the top level too: a misspelt mode would leave mirrors synchronous unseen.
    expect(() => new DualWriter({ ...base(), plan, mirrror: 'async' } as never)).toThrow(
      /^mirrror: is not an option \(options: legacy, medplum, .*onEvent, telemetry\) \(got a string\)$/,
    );
    expect(() => new DualWriter({ ...base(), plan, retry: { retires: 3 } as never })).toThrow(
      /retry\.retires.*is not an option/,
    );
    for (const [drainer, message] of refused) {
      expect(() => new DualWriter({ ...base(), plan, drainer: drainer as never })).toThrow(
        ConfigurationError,
      );
      expect(() => new DualWriter({ ...base(), plan, drainer: drainer as never })).toThrow(message);
    }
  });

  it('a writer whose options are refused leaves the plan as it was', async () => {
    const plan = new CutoverPlan<{ unit: string }>({ default: 'legacy-only', unitOf: (c) => c.unit });
    plan.useReadiness(
      () =>
        Promise.resolve({
          verdict: 'not-ready',
          failing: [{ gate: 'maxConflicts', value: 9, limit: 0 }],
        }) as never,
    );
    expect(() => new DualWriter({ ...base(), plan, drainer: { concurrency: 0 } })).toThrow(
      /drainer\.concurrency/,
    );
    // The refused writer did not register its readiness in place of the plan's.
    await expect(plan.set('north', 'dual-write')).rejects.toMatchObject({ name: 'StageChangeRefusedError' });
  });
});
