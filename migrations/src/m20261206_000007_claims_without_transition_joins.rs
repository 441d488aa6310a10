//! The claims' statement trigger without a join of its two transition tables.
//!
//! `tickets_check_claims` (m20261205_000006) gave a claim back on UPDATE when the old row was
//! registered and `NOT EXISTS` a registered new row in `new_rows`: an anti-join of `old_rows`
//! with `new_rows`. Transition tables have no index and no statistics, and PostgreSQL may run
//! that anti-join as a nested loop: with the draw's `UPDATE tickets SET status = 'won'` of
//! 99,695 winners it visited about 10^10 rows and ran for minutes (seen in the publication
//! bench at 2,000,000 tickets; another run of the same bench planned it well and took seconds).
//! Whether the ticket is still registered is now asked of `tickets` itself, through its
//! primary key, so every statement of the trigger joins a transition table only with an
//! indexed table and stays linear in the rows the statement changed, whatever the plan.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE OR REPLACE FUNCTION tickets_check_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    bad record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- After the statement, `tickets` holds the new rows: a ticket that is not registered
        -- there any more gives its claim back (a row moved between partitions still is).
        DELETE FROM active_persons a USING old_rows o
        WHERE o.status = 'registered' AND a.person_tag = o.person_tag AND a.ticket_id = o.ticket_id
          AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.ticket_id = o.ticket_id
                          AND t.person_tag = o.person_tag AND t.status = 'registered');
    END IF;
    SELECT n.person_tag, n.ticket_id INTO bad FROM new_rows n
    WHERE n.status = 'registered' AND NOT EXISTS (
        SELECT 1 FROM active_persons a WHERE a.person_tag = n.person_tag AND a.ticket_id = n.ticket_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE unique_violation USING
            MESSAGE = format('person %s already holds a registered ticket (or %s was not claimed)',
                             bad.person_tag, bad.ticket_id),
            CONSTRAINT = 'tickets_one_active_per_person',
            TABLE = 'tickets';
    END IF;
    RETURN NULL;
END
$fn$;
"#;

const DOWN: &str = r#"
CREATE OR REPLACE FUNCTION tickets_check_claims() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    bad record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM active_persons a USING old_rows o
        WHERE o.status = 'registered' AND a.person_tag = o.person_tag AND a.ticket_id = o.ticket_id
          AND NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.ticket_id = o.ticket_id
                          AND n.person_tag = o.person_tag AND n.status = 'registered');
    END IF;
    SELECT n.person_tag, n.ticket_id INTO bad FROM new_rows n
    WHERE n.status = 'registered' AND NOT EXISTS (
        SELECT 1 FROM active_persons a WHERE a.person_tag = n.person_tag AND a.ticket_id = n.ticket_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE unique_violation USING
            MESSAGE = format('person %s already holds a registered ticket (or %s was not claimed)',
                             bad.person_tag, bad.ticket_id),
            CONSTRAINT = 'tickets_one_active_per_person',
            TABLE = 'tickets';
    END IF;
    RETURN NULL;
END
$fn$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
