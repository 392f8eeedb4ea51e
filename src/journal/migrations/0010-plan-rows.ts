import type { Migration } from './migrate.ts';

/**
 * The stored plan as rows: one per unit and resource type (`''` for the unit's own stage), and a
 * revision on the single `plan` row that every change bumps in the transaction that makes it.
 *
 * Before, the plan was one JSON document that each instance saved whole from its own copy: two
 * instances changing two units within a refresh interval each stored a plan without the other's
 * change, at the same revision, and neither reloaded. With rows, a change writes only its own
 * row, under the `plan` row's lock (`SELECT … FOR UPDATE` serialises changes), and compares the
 * stage it moves from with the stored one (compare-and-set); its `stage-change` event is written
 * in the same transaction, so the history cannot list a change the plan does not hold.
 *
 * A document stored by an earlier version is carried over: its default, its stages and its
 * revision.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const planStages: Migration = {
  version: 10,
  name: 'plan-rows',
  statements: [
    `CREATE TABLE plan_stages (
      unit text NOT NULL,
      resource_type text NOT NULL,
      stage text NOT NULL CHECK (stage IN ('legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only')),
      CONSTRAINT plan_stages_pkey PRIMARY KEY (unit, resource_type)
    )`,
    `ALTER TABLE plan ADD COLUMN default_stage text
      CHECK (default_stage IN ('legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only'))`,
    `ALTER TABLE plan ADD COLUMN revision bigint NOT NULL DEFAULT 0`,
    `UPDATE plan SET
       default_stage = CASE WHEN plan->>'default' IN ('legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only')
         THEN plan->>'default' END,
       revision = CASE WHEN jsonb_typeof(plan->'revision') = 'number' THEN (plan->>'revision')::numeric::bigint ELSE 0 END
     WHERE jsonb_typeof(plan) = 'object'`,
    `INSERT INTO plan_stages (unit, resource_type, stage)
     SELECT u.key, '', u.value->>'default'
     FROM plan p, jsonb_each(CASE WHEN jsonb_typeof(p.plan->'units') = 'object' THEN p.plan->'units' ELSE '{}' END) u
     WHERE jsonb_typeof(u.value) = 'object'
       AND u.value->>'default' IN ('legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only')`,
    `INSERT INTO plan_stages (unit, resource_type, stage)
     SELECT u.key, t.key, t.value #>> '{}'
     FROM plan p,
       jsonb_each(CASE WHEN jsonb_typeof(p.plan->'units') = 'object' THEN p.plan->'units' ELSE '{}' END) u,
       jsonb_each(CASE WHEN jsonb_typeof(u.value->'resourceTypes') = 'object' THEN u.value->'resourceTypes' ELSE '{}' END) t
     WHERE t.key <> '' AND t.value #>> '{}' IN ('legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only')`,
    `ALTER TABLE plan DROP COLUMN plan`,
  ],
};
