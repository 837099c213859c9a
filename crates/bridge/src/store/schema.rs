//! The state store's tables, as migrations applied by [`crate::db::Db::migrate`] under the
//! component name `store`.

use crate::db::Migration;

pub(crate) const COMPONENT: &str = "store";

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs, journal, journal history, api calls",
        statements: &[
            "CREATE TABLE runs (
            id {id},
            flow TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            documents_ok {int} NOT NULL DEFAULT 0,
            documents_failed {int} NOT NULL DEFAULT 0,
            documents_skipped {int} NOT NULL DEFAULT 0,
            api_calls {int} NOT NULL DEFAULT 0,
            error TEXT
        )",
            "CREATE INDEX runs_flow ON runs (flow, id)",
            // The current step of each document: one row per (flow, key).
            "CREATE TABLE journal (
            flow TEXT NOT NULL,
            doc_key TEXT NOT NULL,
            step TEXT NOT NULL,
            detail TEXT NOT NULL,
            run_id {int},
            updated_at TEXT NOT NULL,
            PRIMARY KEY (flow, doc_key)
        )",
            // Every change of the journal, for audit: appended in the same transaction.
            "CREATE TABLE journal_history (
            id {id},
            flow TEXT NOT NULL,
            doc_key TEXT NOT NULL,
            step TEXT NOT NULL,
            detail TEXT NOT NULL,
            run_id {int},
            at TEXT NOT NULL
        )",
            "CREATE INDEX journal_history_doc ON journal_history (flow, doc_key, id)",
            "CREATE TABLE api_calls (
            id {id},
            at TEXT NOT NULL,
            flow TEXT NOT NULL,
            run_id {int},
            document TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            status {int},
            status_class TEXT NOT NULL,
            duration_ms {int} NOT NULL,
            waited_ms {int} NOT NULL,
            attempt {int} NOT NULL,
            bytes_sent {int} NOT NULL,
            bytes_received {int} NOT NULL,
            error TEXT
        )",
            "CREATE INDEX api_calls_at ON api_calls (at)",
            "CREATE INDEX api_calls_run ON api_calls (run_id)",
            "CREATE INDEX api_calls_flow ON api_calls (flow, at)",
            "CREATE INDEX api_calls_document ON api_calls (document)",
        ],
    },
    Migration {
        version: 2,
        name: "notification incidents, sent notifications, reported rejections, history by run",
        statements: &[
            // One row per outage of one kind in one flow; open while closed_at is NULL.
            "CREATE TABLE notify_incidents (
            id {id},
            flow TEXT NOT NULL,
            kind TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            last_sent_at TEXT,
            count {int} NOT NULL,
            detail TEXT NOT NULL,
            closed_at TEXT
        )",
            // At most one open incident per (flow, kind), even with a cron `sync` and the daemon
            // noticing the same outage at once: the loser of the race joins the winner's incident.
            "CREATE UNIQUE INDEX notify_incidents_open ON notify_incidents (flow, kind) \
         WHERE closed_at IS NULL",
            "CREATE INDEX notify_incidents_opened ON notify_incidents (opened_at)",
            // Every send attempt, per channel.
            "CREATE TABLE notifications (
            id {id},
            at TEXT NOT NULL,
            channel TEXT NOT NULL,
            flow TEXT NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            incident_id {int}
        )",
            "CREATE INDEX notifications_at ON notifications (at)",
            // Rejections already reported, so a document Coupa lists again each pass is reported
            // once per reason. Keyed by a digest: reasons can be longer than an index entry allows.
            "CREATE TABLE notify_rejections_sent (
            flow TEXT NOT NULL,
            document TEXT NOT NULL,
            reason_digest TEXT NOT NULL,
            reason TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (flow, document, reason_digest)
        )",
            // The dashboard's run page reads a run's documents from the history.
            "CREATE INDEX journal_history_run ON journal_history (run_id)",
        ],
    },
    Migration {
        version: 3,
        name: "leases, replicas, the replica of each run",
        statements: &[
            // Who runs a tenant's flows: one row per lease. `token` grows by one at every
            // change of holder (the fencing token); times are the database's clock in ms.
            "CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            token {int} NOT NULL,
            acquired_ms {int} NOT NULL,
            expires_ms {int} NOT NULL
        )",
            // The `coupa-bridge run` processes sharing this store, and when each was last seen.
            "CREATE TABLE replicas (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            started_ms {int} NOT NULL,
            seen_ms {int} NOT NULL
        )",
            "ALTER TABLE runs ADD COLUMN replica TEXT",
        ],
    },
];
