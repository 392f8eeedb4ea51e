import type { AuditEvent, Patient } from '@medplum/fhirtypes';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AUDIT_EVENT_SYSTEM,
  auditEventSink,
  callbackSink,
  loggerSink,
  manualReview,
  threeWayMerge,
  byResourceType,
  type DualWriteEvent,
  type EventLogger,
  type EventSink,
} from '../../src/index.ts';
import type { MemoryLegacyAdapter } from '../../src/testing/index.ts';
import type { PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, north, startWriterFixture, type WriterFixture } from '../harness/writer-fixture.ts';

/*
 * Seeded marker values in names, an address and birth dates go through conflicts (merged and
 * left to review), divergence found by shadow reads and read-backs, retries and dead letters.
 * Then every log line, event, stored event and AuditEvent is searched for them.
 */
const MARKERS = {
  given: 'Marzipanfrau',
  family: 'Quokkabridge',
  familyEdited: 'Quokkabridgeton',
  birthDate: '1911-11-11',
  birthDateEdited: '1922-02-22',
  addressLine: 'Zebracrossing Lane 42',
  givenEdited: 'Wombatinski',
} as const;

let fixture: WriterFixture<MemoryLegacyAdapter<PatientRow>> | undefined;
afterEach(async () => {
  await fixture?.writer.stop();
  await fixture?.close();
  fixture = undefined;
});

class CapturingLogger implements EventLogger {
  readonly lines: string[] = [];
  debug(object: object, message: string): void {
    this.lines.push(JSON.stringify({ level: 'debug', ...object, message }));
  }
  info(object: object, message: string): void {
    this.lines.push(JSON.stringify({ level: 'info', ...object, message }));
  }
  warn(object: object, message: string): void {
    this.lines.push(JSON.stringify({ level: 'warn', ...object, message }));
  }
}

async function runScenario(revealValues: boolean) {
  const logger = new CapturingLogger();
  const events: DualWriteEvent[] = [];
  // The AuditEvent sink needs a client of the test server, which the fixture starts.
  const audit: { sink?: EventSink } = {};
  const auditing: Promise<void>[] = [];
  fixture = await startWriterFixture({
    stage: 'dual-write',
    writer: {
      resolver: byResourceType({ Patient: threeWayMerge({ onCollision: 'manual' }) }),
      sinks: [
        loggerSink(logger, { revealValues }),
        callbackSink((event) => void events.push(event), { revealValues }),
        { revealValues, handle: (event) => void auditing.push(Promise.resolve(audit.sink?.handle(event))) },
      ],
      divergence: { verifySampleRate: 1, shadowReads: { sampleRate: 1 } },
    },
  });
  const f = fixture;
  audit.sink = auditEventSink(f.direct, {
    revealValues,
    types: ['conflict', 'resolved', 'divergence', 'dead-letter', 'retry'],
  });
  const row: PatientRow = {
    id: 'p-1',
    first_name: MARKERS.given,
    last_name: MARKERS.family,
    birth_date: MARKERS.birthDate,
  };
  await f.writer.create('Patient', row, north);

  // A conflict that merges: Medplum adds an address and changes the birth date; the legacy
  // screens change the family name.
  const [copy] = await medplumCopies(f.direct, 'p-1');
  await f.direct.updateResource<Patient>({
    ...copy!,
    birthDate: MARKERS.birthDateEdited,
    address: [{ line: [MARKERS.addressLine] }],
  });
  f.server.faults.failNext(1, 503, { methods: ['PUT'] });
  await f.writer.update('Patient', 'p-1', { ...row, last_name: MARKERS.familyEdited }, north);

  // A conflict left to review: both change the given name.
  const [merged] = await medplumCopies(f.direct, 'p-1');
  await f.direct.updateResource<Patient>({
    ...merged!,
    name: [{ given: [MARKERS.givenEdited], family: MARKERS.family }],
  });
  const current = (await f.legacy.read('Patient', 'p-1'))!.row;
  await f.writer
    .update('Patient', 'p-1', { ...current, first_name: `${MARKERS.given}-2` }, north)
    .catch(() => undefined);

  // Divergence by a shadow read.
  await f.plan.set('north', 'shadow', { force: true });
  await f.writer.read('Patient', 'p-1', north);
  await f.writer.settled();
  await Promise.all(auditing);

  const audits = await f.direct.searchResources(
    'AuditEvent',
    { type: `${AUDIT_EVENT_SYSTEM}|conflict` },
    { cache: 'no-cache' },
  );
  const allAudits = await f.direct.searchResources('AuditEvent', { _count: '100' }, { cache: 'no-cache' });
  return { logger, events, stored: await f.store.listEvents({ limit: 1000 }), audits, allAudits, f };
}

function leaked(text: string): string[] {
  return Object.values(MARKERS).filter((marker) => text.includes(marker));
}

describe('sinks', () => {
  it('reject what is not a logger, a function or a MedplumClient, naming it', () => {
    expect(() => loggerSink({ info: () => undefined } as never)).toThrow(
      expect.objectContaining({ name: 'ConfigurationError', field: 'logger.debug' }) as Error,
    );
    expect(() => callbackSink('log' as never)).toThrow(expect.objectContaining({ field: 'fn' }) as Error);
    expect(() => auditEventSink({} as never)).toThrow(expect.objectContaining({ field: 'medplum' }) as Error);
  });
});

describe('PHI in logs, events and AuditEvents', () => {
  it('by default none of the seeded values appears anywhere, while the findings do', async () => {
    const { logger, events, stored, allAudits, audits } = await runScenario(false);
    const types = new Set(events.map((event) => event.type));
    for (const type of ['conflict', 'resolved', 'divergence', 'retry', 'mirrored'] as const)
      expect(types).toContain(type);
    expect(audits.length).toBeGreaterThanOrEqual(2);
    expect(logger.lines.some((line) => line.includes('"event":"conflict"'))).toBe(true);

    expect(leaked(logger.lines.join('\n'))).toEqual([]);
    expect(leaked(JSON.stringify(events))).toEqual([]);
    expect(leaked(JSON.stringify(stored))).toEqual([]);
    expect(leaked(JSON.stringify(allAudits as AuditEvent[]))).toEqual([]);
    // Paths are there; values are hashes.
    expect(JSON.stringify(events)).toContain('"path":"address"');
    expect(JSON.stringify(events)).toMatch(/"after":"sha256:[0-9a-f]{16}"/);
  });

  it('with revealValues the sinks that ask for values get them, and the store still does not', async () => {
    const { logger, events, stored, audits } = await runScenario(true);
    expect(leaked(logger.lines.join('\n'))).toEqual(
      expect.arrayContaining([MARKERS.addressLine, MARKERS.birthDateEdited, MARKERS.givenEdited]),
    );
    expect(leaked(JSON.stringify(events))).toContain(MARKERS.addressLine);
    expect(leaked(JSON.stringify(audits))).toContain(MARKERS.addressLine);
    expect(leaked(JSON.stringify(stored))).toEqual([]);
  });

  it('an error a conflict left to review carries paths, never values', async () => {
    fixture = await startWriterFixture({ stage: 'dual-write', writer: { resolver: manualReview() } });
    const f = fixture;
    await f.writer.create(
      'Patient',
      { id: 'p-1', first_name: MARKERS.given, last_name: MARKERS.family },
      north,
    );
    const [copy] = await medplumCopies(f.direct, 'p-1');
    await f.direct.updateResource<Patient>({ ...copy!, birthDate: MARKERS.birthDateEdited });
    const error = await f.writer
      .update(
        'Patient',
        'p-1',
        { id: 'p-1', first_name: MARKERS.given, last_name: MARKERS.familyEdited },
        north,
      )
      .catch((err: unknown) => err);
    const cause = (error as { cause: { report: unknown; message: string } }).cause;
    expect(JSON.stringify(cause.report)).toContain('birthDate');
    expect(leaked(`${JSON.stringify(cause.report)} ${cause.message} ${String(error)}`)).toEqual([]);
    expect(leaked(JSON.stringify(await f.writer.deadLetters()))).toEqual([]);
  });
});
