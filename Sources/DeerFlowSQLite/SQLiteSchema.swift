/// The SQLite schema, as numbered migrations. A database whose version is newer than the last
/// migration here was written by a newer DeerFlow: the store refuses to open it.
enum SQLiteSchema {
    static let migrations: [[String]] = [
        // 1: runs, tasks, attempts, logs, workers, schedules.
        [
            """
            CREATE TABLE runs (
                id TEXT PRIMARY KEY,
                workflow TEXT NOT NULL,
                version TEXT NOT NULL,
                status TEXT NOT NULL,
                params TEXT NOT NULL,
                trigger TEXT NOT NULL,
                scheduled_for INTEGER,
                trace_context TEXT,
                created_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                tasks_total INTEGER NOT NULL,
                tasks_finished INTEGER NOT NULL DEFAULT 0,
                tasks_failed INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE UNIQUE INDEX runs_schedule ON runs (workflow, scheduled_for) WHERE scheduled_for IS NOT NULL",
            "CREATE INDEX runs_active ON runs (status) WHERE status IN ('pending', 'running')",
            "CREATE INDEX runs_by_workflow ON runs (workflow, id)",
            "CREATE INDEX runs_by_status ON runs (status, id)",
            """
            CREATE TABLE tasks (
                run_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                task_id TEXT NOT NULL,
                type TEXT NOT NULL,
                queue TEXT NOT NULL,
                priority INTEGER NOT NULL,
                status TEXT NOT NULL,
                deps_remaining INTEGER NOT NULL,
                dependents TEXT NOT NULL,
                retries INTEGER NOT NULL,
                retry_delay_ms INTEGER NOT NULL,
                max_retry_delay_ms INTEGER NOT NULL,
                jitter REAL NOT NULL,
                timeout_ms INTEGER,
                retries_used INTEGER NOT NULL DEFAULT 0,
                interruptions INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                output TEXT,
                PRIMARY KEY (run_id, idx)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE attempts (
                id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL,
                task_idx INTEGER NOT NULL,
                number INTEGER NOT NULL,
                status TEXT NOT NULL,
                queue TEXT NOT NULL,
                priority INTEGER NOT NULL,
                queued_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                worker TEXT,
                lease_until INTEGER,
                stop_requested INTEGER NOT NULL DEFAULT 0,
                error TEXT
            )
            """,
            "CREATE UNIQUE INDEX attempts_by_task ON attempts (run_id, task_idx, number)",
            "CREATE INDEX attempts_ready ON attempts (queue, priority DESC, queued_at, id) WHERE status = 'queued'",
            "CREATE INDEX attempts_running ON attempts (worker) WHERE status = 'running'",
            """
            CREATE TABLE task_logs (
                attempt_id INTEGER PRIMARY KEY,
                text TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                dropped INTEGER NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE workers (
                id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                slots INTEGER NOT NULL,
                busy INTEGER NOT NULL,
                queues TEXT NOT NULL,
                version TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                last_seen INTEGER NOT NULL,
                state TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE schedules (
                workflow TEXT PRIMARY KEY,
                cron TEXT NOT NULL,
                timezone TEXT NOT NULL,
                next_fire_at INTEGER,
                last_fired_at INTEGER
            )
            """,
        ],
        // 2: the notification outbox; process state (active alerts).
        [
            """
            CREATE TABLE notification_outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                key TEXT NOT NULL UNIQUE,
                channel TEXT NOT NULL,
                payload TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                next_attempt_at INTEGER NOT NULL,
                claimed_until INTEGER,
                delivered_at INTEGER,
                last_error TEXT
            )
            """,
            "CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at, id) WHERE status = 'pending'",
            "CREATE TABLE deerflow_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL)",
        ],
        // 3: retention: finished runs in the order purges delete them.
        [
            "CREATE INDEX runs_finished ON runs (finished_at, id) WHERE finished_at IS NOT NULL",
        ],
        // 4: paused schedules; backfills and the runs they created.
        [
            "ALTER TABLE schedules ADD COLUMN paused INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN backfill_id TEXT",
            "CREATE INDEX runs_by_backfill ON runs (backfill_id, status) WHERE backfill_id IS NOT NULL",
            """
            CREATE TABLE backfills (
                id TEXT PRIMARY KEY,
                workflow TEXT NOT NULL,
                cron TEXT NOT NULL,
                timezone TEXT NOT NULL,
                range_from INTEGER NOT NULL,
                range_to INTEGER NOT NULL,
                max_active INTEGER NOT NULL,
                params TEXT NOT NULL,
                status TEXT NOT NULL,
                fire_times INTEGER NOT NULL,
                next_fire_at INTEGER,
                runs_created INTEGER NOT NULL DEFAULT 0,
                already_present INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                finished_at INTEGER
            )
            """,
            "CREATE INDEX backfills_running ON backfills (created_at) WHERE status = 'running'",
        ],
        // 5: run retries, reruns and run timeouts.
        [
            "ALTER TABLE runs ADD COLUMN reason TEXT",
            "ALTER TABLE runs ADD COLUMN rerun_of TEXT",
            "ALTER TABLE runs ADD COLUMN timeout_ms INTEGER",
            "ALTER TABLE runs ADD COLUMN deadline_at INTEGER",
            "ALTER TABLE runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX runs_deadline ON runs (deadline_at) WHERE deadline_at IS NOT NULL AND status IN ('pending', 'running')",
        ],
        // 6: concurrency limits: max_active_runs per workflow, concurrency per queue; runs waiting for them.
        // No index of its own: counting a limited workflow's active runs uses runs_by_status, so
        // runs of workflows without a limit cost no extra index write.
        [
            "ALTER TABLE runs ADD COLUMN waiting_reason TEXT",
            "CREATE TABLE workflow_limits (workflow TEXT PRIMARY KEY, max_active_runs INTEGER NOT NULL)",
            "CREATE TABLE queue_limits (queue TEXT PRIMARY KEY, concurrency INTEGER NOT NULL)",
        ],
        // 7: webhook deliveries: a delivery id its sender repeats starts no second run.
        [
            """
            CREATE TABLE webhook_deliveries (
                hook TEXT NOT NULL,
                delivery_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                PRIMARY KEY (hook, delivery_id)
            )
            """,
            "CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at)",
        ],
        // 8: sub-workflows: a child run records the attempt of the `workflow` task that started it;
        // one child per parent attempt, found again by a retried or reclaimed attempt.
        [
            "ALTER TABLE runs ADD COLUMN parent_run_id TEXT",
            "ALTER TABLE runs ADD COLUMN parent_task_id TEXT",
            "ALTER TABLE runs ADD COLUMN parent_attempt INTEGER",
            "CREATE UNIQUE INDEX runs_parent ON runs (parent_run_id, parent_task_id, parent_attempt) WHERE parent_run_id IS NOT NULL",
        ],
        // 9: dynamic fan-out: a mapped task's instance counters; its instances' rows (numbered
        // from MapProgress.base(of:)) with their position and item.
        [
            "ALTER TABLE tasks ADD COLUMN map_count INTEGER",
            "ALTER TABLE tasks ADD COLUMN map_parallel INTEGER",
            "ALTER TABLE tasks ADD COLUMN map_succeeded INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE tasks ADD COLUMN map_failed INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE tasks ADD COLUMN map_parent INTEGER",
            "ALTER TABLE tasks ADD COLUMN map_index INTEGER",
            "ALTER TABLE tasks ADD COLUMN item TEXT",
        ],
        // 10: runs_active (status of pending and running runs) duplicated what runs_by_status
        // (status, id) finds as fast, and cost a page write when a run was created and another
        // when it finished (of about 20 per one-task run).
        [
            "DROP INDEX runs_active",
        ],
    ]
}
