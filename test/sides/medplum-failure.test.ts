import { OperationOutcomeError } from '@medplum/core';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { RejectedError } from '../../src/errors.ts';
import type { HttpExchange } from '../../src/sides/http-capture.ts';
import { classifyMedplumError } from '../../src/sides/medplum-failure.ts';

const exchange: HttpExchange = { status: 400, headers: undefined, networkError: false };

const MARKER = 'Zebulon-7731';

describe('a Medplum error whose diagnostics quote a value', () => {
  it('keeps the value out of the typed error, its message and its cause', () => {
    const thrown = new OperationOutcomeError({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'invalid',
          diagnostics: `Invalid value '${MARKER}' for birthDate`,
          expression: ['Patient.birthDate'],
        },
      ],
    });
    const error = classifyMedplumError(thrown, exchange, {
      resourceType: 'Patient',
      legacyId: '42',
    });
    expect(error).toBeInstanceOf(RejectedError);
    expect(error.status).toBe(400);
    expect(error.message).toContain('Invalid value');
    expect(JSON.stringify(error)).not.toContain(MARKER);
    expect(inspect(error, { depth: 10, showHidden: true })).not.toContain(MARKER);
  });
});
