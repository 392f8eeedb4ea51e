import type { Migration } from './migrate.ts';

/**
 * The first key of the advisory locks a deferral and a wake take per dependency (the second is
 * the hash of its name), apart from the migrations' class and the application's single keys.
 *
 * @example
 * ```ts
 * await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [WAIT_LOCK_CLASS, 'Patient/42']);
 * ```
 */
export const WAIT_LOCK_CLASS = 0x64770002; // "dw" 2

/**
 * Mirrors that wait for a record they reference (an Encounter's patient not linked yet): the
 * outbox entry names what it waits for in `waiting_for` (`Patient/42` by legacy key,
 * `Patient#<id>` by Medplum id) and is due again at a recheck time far off. Whatever changes
 * the dependency's state wakes its dependents at once — a link inserted (its mirror landed, by
 * whichever path: drainer, inline, feed, backfill, operator) or a dead letter recorded (they are
 * then held with that reason) — through triggers, so no code path can forget to. The partial
 * index keeps each wake one probe; entries that wait for nothing are not in it.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const waitingFor: Migration = {
  version: 12,
  name: 'waiting-for',
  statements: [
    'ALTER TABLE outbox ADD COLUMN waiting_for text',
    'CREATE INDEX outbox_waiting_for ON outbox (waiting_for) WHERE waiting_for IS NOT NULL',
    `CREATE INDEX dead_letters_open_record ON dead_letters (resource_type, legacy_id) WHERE status = 'open'`,
    // A deferral and a wake for one dependency take the same advisory lock (by its name), the
    // deferral before it checks for the link: either the wake comes after the deferral committed
    // and finds it, or the deferral's check comes after the link committed and sees it. Without
    // it both could miss each other (each statement's snapshot predating the other's commit) and
    // the dependent would sleep its whole recheck time; on PostgreSQL under a drainer that
    // happened in most runs of the chart test. The wake's UPDATE, a statement of a VOLATILE
    // function, takes its snapshot once the lock is held.
    // Dead letters have no medplum_id: to_jsonb reads it as NULL there, and `IN` then matches
    // by legacy key alone.
    `CREATE FUNCTION wake_dependents() RETURNS trigger
       LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $body$
     BEGIN
       PERFORM pg_advisory_xact_lock(${WAIT_LOCK_CLASS}, hashtext(NEW.resource_type || '/' || NEW.legacy_id));
       IF to_jsonb(NEW) ? 'medplum_id' THEN
         PERFORM pg_advisory_xact_lock(${WAIT_LOCK_CLASS}, hashtext(NEW.resource_type || '#' || (to_jsonb(NEW) ->> 'medplum_id')));
       END IF;
       UPDATE outbox SET next_attempt_at = clock_timestamp()
       WHERE waiting_for IN (NEW.resource_type || '/' || NEW.legacy_id,
                             NEW.resource_type || '#' || (to_jsonb(NEW) ->> 'medplum_id'))
         AND next_attempt_at > clock_timestamp();
       RETURN NULL;
     END
     $body$`,
    `CREATE TRIGGER links_wake_dependents AFTER INSERT ON links
       FOR EACH ROW EXECUTE FUNCTION wake_dependents()`,
    `CREATE TRIGGER dead_letters_wake_dependents AFTER INSERT ON dead_letters
       FOR EACH ROW EXECUTE FUNCTION wake_dependents()`,
  ],
};
