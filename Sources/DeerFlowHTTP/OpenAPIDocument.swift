// Generated from openapi.yaml by scripts/generate-openapi; a test checks the two agree.
enum OpenAPIDocument {
    static let yaml = ##"""
openapi: 3.1.0
info:
  title: DeerFlow API
  version: 0.1.0
  summary: Trigger, inspect and cancel workflow runs; read task logs, workers and health.
  description: |
    The HTTP API of a DeerFlow server (`deerflow server`).

    * Every JSON response is `application/json; charset=utf-8` and ends with a newline.
    * Every error answers `{"error": {"code": "...", "message": "..."}}`; the `code` is a stable
      string (`bad_request`, `unauthorized`, `not_found`, `conflict`, `payload_too_large`,
      `invalid_params`, `unavailable`, `internal`), the `message` says what to do.
      The health endpoints are the exception: their 503 bodies describe the health, not an error.
    * Times are RFC 3339 in UTC with milliseconds, e.g. `2024-06-01T12:00:00.123Z`.
    * Authentication is optional. With no bearer tokens configured (`api.tokens` in
      `deerflow.yaml`, or `DEERFLOW_API_TOKENS`) nothing needs a token and no route answers 401.
      With tokens configured, every route below (this document included) needs
      `Authorization: Bearer <token>`; the `/health` routes need one only when
      `api.protect_health` is true. The check is made on the route a request matches, so
      `//api/v1/runs` or `/api/v1/runs/` are as protected as `/api/v1/runs`.
    * A request whose method and path match no route below answers 404 with code `not_found`
      (there is no 405, and HEAD is not answered).
    * Prometheus metrics are served on a separate port (`metrics.port`, default 9090); see
      `GET /metrics`.
servers:
  - url: http://127.0.0.1:8080
    description: The API listener (`api.host`/`api.port`, default 127.0.0.1:8080).
tags:
  - name: meta
    description: This document.
  - name: workflows
    description: Registered workflows and triggering runs.
  - name: runs
    description: Listing, inspecting and cancelling runs; task logs.
  - name: workers
    description: Worker processes registered in the store.
  - name: alerts
    description: In-process alert evaluation, and Alertmanager's alerts routed to DeerFlow's notification channels.
  - name: health
    description: Liveness, readiness and health checks for load balancers and orchestrators.
  - name: metrics
    description: Prometheus scrape endpoint, on the metrics port.
security:
  - {}
  - bearerAuth: []
paths:
  /api/v1/openapi.yaml:
    get:
      tags: [meta]
      operationId: getOpenAPIDocument
      summary: This OpenAPI document
      description: Returns this document as YAML. Needs a token when tokens are configured.
      responses:
        '200':
          description: The OpenAPI document.
          content:
            application/yaml:
              schema:
                type: string
        '401':
          $ref: '#/components/responses/Unauthorized'
  /api/v1/workflows:
    get:
      tags: [workflows]
      operationId: listWorkflows
      summary: List registered workflows
      description: |
        Every workflow this server can trigger, in registration order, with its parameters,
        tasks and schedule (with the next fire time when the scheduler has computed one).
        Store failures only blank out `next_fire_at`; this route does not fail.
      responses:
        '200':
          description: The workflows.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkflowList'
              example:
                workflows:
                  - name: nightly-etl
                    description: Load yesterday's orders into the warehouse.
                    version: nightly-etl@3f9a01bc
                    schedule:
                      cron: 0 2 * * *
                      timezone: UTC
                      catchup: latest
                      next_fire_at: '2024-06-02T02:00:00.000Z'
                    params:
                      - name: day
                        type: string
                        required: false
                        default: yesterday
                        secret: false
                        description: Day to load (YYYY-MM-DD).
                      - name: db_password
                        type: string
                        required: true
                        default: null
                        secret: true
                        description: ''
                    tasks:
                      - id: extract
                        type: shell
                        depends_on: []
                        queue: default
                        priority: 0
                        retries: 2
                        timeout: 10m
                      - id: load
                        type: http
                        depends_on: [extract]
                        queue: default
                        priority: 0
                        retries: 0
                        timeout: null
        '401':
          $ref: '#/components/responses/Unauthorized'
  /api/v1/workflows/{name}:
    parameters:
      - $ref: '#/components/parameters/WorkflowName'
    get:
      tags: [workflows]
      operationId: getWorkflow
      summary: One workflow
      description: The workflow's definition, as in the list.
      responses:
        '200':
          description: The workflow.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Workflow'
              example:
                name: hello
                description: ''
                version: hello@0a1b2c3d
                schedule: null
                params: []
                tasks:
                  - id: say
                    type: shell
                    depends_on: []
                    queue: default
                    priority: 0
                    retries: 0
                    timeout: null
        '401':
          $ref: '#/components/responses/Unauthorized'
        '404':
          $ref: '#/components/responses/NotFound'
  /api/v1/workflows/{name}/runs:
    parameters:
      - $ref: '#/components/parameters/WorkflowName'
    post:
      tags: [workflows]
      operationId: triggerRun
      summary: Trigger a run
      description: |
        Creates a run of the workflow (trigger `api`) and answers 201 with the new run and a
        `Location` header. The body is optional: an empty body runs with the declared defaults.
        Parameters are checked against the workflow's declaration (422 when they do not match);
        secret parameters are returned as `[REDACTED]`. The `Content-Type` header is not checked.
      parameters:
        - name: traceparent
          in: header
          required: false
          description: W3C trace context; the run's trace continues this one.
          schema:
            type: string
          example: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
      requestBody:
        required: false
        description: Run parameters. The largest accepted body is 1 MiB by default.
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/TriggerRequest'
            example:
              params:
                day: '2024-06-01'
                full_reload: true
      responses:
        '201':
          description: The run was created.
          headers:
            Location:
              description: Path of the new run, `/api/v1/runs/{id}`.
              schema:
                type: string
              example: /api/v1/runs/01J0ABCDEF0123456789ABCDEF
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Run'
              example:
                id: 01J0ABCDEF0123456789ABCDEF
                workflow: nightly-etl
                workflow_version: nightly-etl@3f9a01bc
                status: pending
                params:
                  day: '2024-06-01'
                  db_password: '[REDACTED]'
                trigger: api
                scheduled_for: null
                created_at: '2024-06-01T12:00:00.123Z'
                started_at: null
                finished_at: null
                progress:
                  total: 2
                  finished: 0
                  failed: 0
        '400':
          description: |
            The body is not valid JSON, not a JSON object, has a field other than `params`, or
            `params` is not an object.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: bad_request
                  message: unknown field 'parms' in the request body; the only field is 'params'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '404':
          description: No workflow of that name is registered.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: not_found
                  message: "workflow 'nightly' is not registered (known: hello, nightly-etl)"
        '409':
          description: |
            The store refused the run as a duplicate (a run of the workflow for the same
            schedule time exists). Runs triggered here have no schedule time, so stores that key
            duplicates on it never answer this.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: conflict
                  message: a run of 'nightly-etl' for this schedule time already exists
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '422':
          description: The parameters do not match the workflow's declaration.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: invalid_params
                  message: "workflow 'nightly-etl': missing required parameter 'db_password' (string)"
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /api/v1/runs:
    get:
      tags: [runs]
      operationId: listRuns
      summary: List runs, newest first
      description: |
        One page of runs, newest first. Pass the `next_cursor` of a page as `cursor` to get the
        next one; `next_cursor` is null on the last page. Empty query values are ignored, and so
        are unknown query parameters.
      parameters:
        - name: workflow
          in: query
          required: false
          description: Only runs of this workflow (an unknown name gives an empty list).
          schema:
            type: string
          example: nightly-etl
        - name: status
          in: query
          required: false
          description: Only runs with this status.
          schema:
            $ref: '#/components/schemas/RunStatus'
        - name: limit
          in: query
          required: false
          description: Page size.
          schema:
            type: integer
            minimum: 1
            maximum: 1000
            default: 50
        - name: cursor
          in: query
          required: false
          description: The `next_cursor` of the previous page (a run id).
          schema:
            $ref: '#/components/schemas/RunID'
      responses:
        '200':
          description: A page of runs.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/RunList'
              example:
                runs:
                  - id: 01J0ABCDEF0123456789ABCDEF
                    workflow: hello
                    workflow_version: hello@0a1b2c3d
                    status: success
                    params: {}
                    trigger: schedule
                    scheduled_for: '2024-06-01T12:00:00.000Z'
                    created_at: '2024-06-01T12:00:00.015Z'
                    started_at: '2024-06-01T12:00:00.020Z'
                    finished_at: '2024-06-01T12:00:01.250Z'
                    progress:
                      total: 1
                      finished: 1
                      failed: 0
                next_cursor: 01J0ABCDEF0123456789ABCDEF
        '400':
          description: "`status`, `limit` or `cursor` is not valid."
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: bad_request
                  message: "limit must be an integer from 1 to 1000, got '5000'"
        '401':
          $ref: '#/components/responses/Unauthorized'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /api/v1/runs/{id}:
    parameters:
      - $ref: '#/components/parameters/RunIDPath'
    get:
      tags: [runs]
      operationId: getRun
      summary: One run with its tasks and attempts
      description: The run, each task in declaration order, and each task's attempts (oldest first).
      responses:
        '200':
          description: The run.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/RunDetail'
              example:
                id: 01J0ABCDEF0123456789ABCDEF
                workflow: hello
                workflow_version: hello@0a1b2c3d
                status: running
                params: {}
                trigger: api
                scheduled_for: null
                created_at: '2024-06-01T12:00:00.015Z'
                started_at: '2024-06-01T12:00:00.020Z'
                finished_at: null
                progress:
                  total: 1
                  finished: 0
                  failed: 0
                tasks:
                  - id: say
                    type: shell
                    queue: default
                    status: running
                    output: null
                    attempts:
                      - number: 1
                        status: failed
                        queued_at: '2024-06-01T12:00:00.015Z'
                        started_at: '2024-06-01T12:00:00.020Z'
                        finished_at: '2024-06-01T12:00:00.400Z'
                        worker: host-1:4242:1x3k9q
                        error: "exited with code 1: error: timeout"
                      - number: 2
                        status: running
                        queued_at: '2024-06-01T12:00:01.400Z'
                        started_at: '2024-06-01T12:00:01.410Z'
                        finished_at: null
                        worker: host-1:4242:1x3k9q
                        error: null
        '401':
          $ref: '#/components/responses/Unauthorized'
        '404':
          $ref: '#/components/responses/RunNotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /api/v1/runs/{id}/cancel:
    parameters:
      - $ref: '#/components/parameters/RunIDPath'
    post:
      tags: [runs]
      operationId: cancelRun
      summary: Cancel a run
      description: |
        Cancels a pending or running run: queued tasks are dropped and running attempts are
        asked to stop. Answers 200 with the run (status `cancelled`). No request body is read.
      responses:
        '200':
          description: The run was cancelled.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Run'
              example:
                id: 01J0ABCDEF0123456789ABCDEF
                workflow: hello
                workflow_version: hello@0a1b2c3d
                status: cancelled
                params: {}
                trigger: api
                scheduled_for: null
                created_at: '2024-06-01T12:00:00.015Z'
                started_at: '2024-06-01T12:00:00.020Z'
                finished_at: '2024-06-01T12:00:03.000Z'
                progress:
                  total: 1
                  finished: 1
                  failed: 0
        '401':
          $ref: '#/components/responses/Unauthorized'
        '404':
          $ref: '#/components/responses/RunNotFound'
        '409':
          description: The run already finished.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: conflict
                  message: run 01J0ABCDEF0123456789ABCDEF already finished with status success; only pending or running runs can be cancelled
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /api/v1/runs/{id}/tasks/{task_id}/log:
    parameters:
      - $ref: '#/components/parameters/RunIDPath'
      - name: task_id
        in: path
        required: true
        description: The task's id within the workflow.
        schema:
          type: string
        example: extract
    get:
      tags: [runs]
      operationId: getTaskLog
      summary: Log of a task's attempts
      description: |
        The captured output of every attempt of the task (or of one attempt), oldest first.
        As text by default: each attempt starts with a line `=== attempt N (status) ===`.
        With `format=json`, as JSON. A task without attempts yet gives an empty text or an
        empty `attempts` array. A log cut at the engine's limit ends with a
        `[deerflow] log truncated: N more bytes dropped` line.
      parameters:
        - name: attempt
          in: query
          required: false
          description: Only this attempt (1 is the first).
          schema:
            type: integer
            minimum: 1
        - name: format
          in: query
          required: false
          description: "`json` for a JSON body; any other value (or none) gives text."
          schema:
            type: string
          example: json
      responses:
        '200':
          description: The logs.
          content:
            text/plain:
              schema:
                type: string
              example: |
                === attempt 1 (failed) ===
                connecting to db...
                error: timeout
                === attempt 2 (success) ===
                connecting to db...
                loaded 1200 rows
            application/json:
              schema:
                $ref: '#/components/schemas/TaskLogList'
              example:
                attempts:
                  - attempt: 1
                    status: failed
                    log: |
                      connecting to db...
                      error: timeout
                    truncated: false
                  - attempt: 2
                    status: success
                    log: |
                      connecting to db...
                      loaded 1200 rows
                    truncated: false
        '400':
          description: "`attempt` is not a positive integer."
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: bad_request
                  message: "attempt must be a positive integer, got '0'"
        '401':
          $ref: '#/components/responses/Unauthorized'
        '404':
          description: The run, the task, or the requested attempt does not exist.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: not_found
                  message: run 01J0ABCDEF0123456789ABCDEF has no task 'extrct'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /api/v1/workers:
    get:
      tags: [workers]
      operationId: listWorkers
      summary: List workers
      description: Every worker registered in the store, including stopped and lost ones.
      responses:
        '200':
          description: The workers.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkerList'
              example:
                workers:
                  - id: host-1:4242:1x3k9q
                    host: host-1
                    pid: 4242
                    slots: 4
                    busy: 1
                    queues: [default, reports]
                    version: 0.1.0
                    started_at: '2024-06-01T11:00:00.000Z'
                    last_seen: '2024-06-01T12:00:00.000Z'
                    state: active
        '401':
          $ref: '#/components/responses/Unauthorized'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /api/v1/alerts:
    get:
      tags: [alerts]
      operationId: listAlerts
      summary: Pending and firing alerts of the in-process rule evaluation
      description: |
        DeerFlow samples its own metrics every `scrape_interval` and evaluates the alert rules
        (`--rules`, `alerts.yaml` in the config directory, or the built-in rules) with
        Prometheus' semantics. Only the scheduler leader evaluates (`evaluating: true`); ask
        another process and the list is empty. With metrics off, `evaluating` is false and
        `reason` says why.
      responses:
        '200':
          description: The alerts, the rules and the size of the sampled history.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/AlertList'
              example:
                evaluating: true
                rules_source: built-in (deerflow export alerts)
                rules: [HighWorkflowFailureRate, TaskQueueBacklog, WorkerPoolExhausted, SchedulerLag]
                interval_seconds: 15
                last_evaluation: '2024-06-01T12:00:00.000Z'
                history:
                  series: 120
                  samples: 31200
                  retention_seconds: 930
                errors: []
                alerts:
                  - name: HighWorkflowFailureRate
                    state: firing
                    labels:
                      alertname: HighWorkflowFailureRate
                      severity: critical
                    annotations:
                      summary: High workflow failure rate
                      description: Failure rate is 25%
                    active_at: '2024-06-01T11:54:00.000Z'
                    fired_at: '2024-06-01T11:59:00.000Z'
                    value: 0.25
        '401':
          $ref: '#/components/responses/Unauthorized'
        '500':
          $ref: '#/components/responses/InternalError'
  /api/v1/alertmanager/webhook:
    post:
      tags: [alerts]
      operationId: receiveAlertmanagerWebhook
      summary: Route Alertmanager's alerts through DeerFlow's notification channels
      description: |
        Point an Alertmanager `webhook_configs` receiver here (`send_resolved: true`): its
        alerts are routed by `notifications.yaml` like DeerFlow's own, through the same outbox.
        A firing alert is queued once per `repeat_interval`, a resolved one once.
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/AlertmanagerWebhook'
            example:
              version: '4'
              groupKey: '{}:{alertname="SchedulerLag"}'
              status: firing
              receiver: deerflow
              groupLabels: {alertname: SchedulerLag}
              commonLabels: {alertname: SchedulerLag, severity: critical}
              commonAnnotations: {summary: Scheduler lag detected}
              externalURL: http://alertmanager:9093
              alerts:
                - status: firing
                  labels: {alertname: SchedulerLag, severity: critical}
                  annotations: {summary: Scheduler lag detected, description: Lag is 75 seconds}
                  startsAt: '2024-06-01T12:00:00.123456789Z'
                  endsAt: '0001-01-01T00:00:00Z'
                  generatorURL: http://prometheus:9090/graph
                  fingerprint: 3f2a9c1d0b7e6a54
      responses:
        '202':
          description: The alerts were queued for delivery (`queued` counts new messages, one per channel).
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Queued'
              example:
                queued: 2
        '400':
          description: The body is not an Alertmanager webhook payload.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: bad_request
                  message: alerts[0].labels has no alertname
        '401':
          $ref: '#/components/responses/Unauthorized'
        '409':
          description: This process has no notification channels (no `notifications.yaml`).
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Error'
              example:
                error:
                  code: conflict
                  message: 'no notification channels: put a notifications.yaml in the --config directory to route Alertmanager''s alerts'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/Unavailable'
  /health:
    get:
      tags: [health]
      operationId: getHealth
      summary: All health checks
      description: |
        Runs every registered check (built in: `database`, `queue`, `scheduler`) concurrently,
        each bounded by its timeout. The overall status is the worst check's: 200 when
        `healthy` or `degraded`, 503 when `unhealthy`. Needs a token only when tokens are
        configured and `api.protect_health` is true.
      responses:
        '200':
          description: Healthy or degraded.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/HealthReport'
              example:
                status: degraded
                checks:
                  database:
                    status: healthy
                    latency_ms: 0.42
                  queue:
                    status: degraded
                    queue_depth: 12000
                    oldest_age_seconds: 35.2
                    threshold_depth: 10000
                    queues_without_workers: []
                    latency_ms: 1.3
                  scheduler:
                    status: healthy
                    lag_seconds: 0
                    threshold_seconds: 30
                    latency_ms: 1.1
        '401':
          $ref: '#/components/responses/Unauthorized'
        '503':
          description: At least one check is unhealthy.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/HealthReport'
              example:
                status: unhealthy
                checks:
                  database:
                    status: unhealthy
                    error: check timed out after 2s
                  queue:
                    status: unhealthy
                    error: the SQLite store is not open; call prepare() first
                  scheduler:
                    status: unhealthy
                    error: the SQLite store is not open; call prepare() first
  /health/live:
    get:
      tags: [health]
      operationId: getLiveness
      summary: Liveness probe
      description: Answers as long as the process serves HTTP.
      responses:
        '200':
          description: Alive.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Liveness'
              example:
                status: alive
        '401':
          $ref: '#/components/responses/Unauthorized'
  /health/ready:
    get:
      tags: [health]
      operationId: getReadiness
      summary: Readiness probe
      description: |
        Ready when the process is not draining and the `database` check (if registered) is not
        unhealthy. 503 while a worker of this process drains, or when the store does not answer
        (the `database` check's details, such as `error`, are included).
      responses:
        '200':
          description: Ready.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Ready'
              example:
                status: ready
        '401':
          $ref: '#/components/responses/Unauthorized'
        '503':
          description: Draining, or the store does not answer.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/NotReady'
              examples:
                draining:
                  value:
                    status: draining
                    reason: the worker is shutting down
                storeDown:
                  value:
                    status: not_ready
                    reason: the store does not answer
                    error: the SQLite store is not open; call prepare() first
  /metrics:
    servers:
      - url: http://127.0.0.1:9090
        description: The metrics listener (`metrics.port`, default 9090), separate from the API.
    get:
      tags: [metrics]
      operationId: getMetrics
      summary: Prometheus metrics
      description: |
        Every metric in the Prometheus text exposition format 0.0.4. Served on the metrics port,
        never on the API port; the path is `metrics.path` (default `/metrics`). No token is
        needed. Gauges are refreshed from the store before each scrape.
      security: []
      responses:
        '200':
          description: The metrics.
          content:
            text/plain; version=0.0.4:
              schema:
                type: string
              example: |
                # HELP deerflow_workflows_active Workflow runs pending or running (cluster-wide).
                # TYPE deerflow_workflows_active gauge
                deerflow_workflows_active 3
components:
  securitySchemes:
    bearerAuth:
      type: http
      scheme: bearer
      description: |
        Optional. Only when the server has tokens configured (`api.tokens`, or the
        comma-separated `DEERFLOW_API_TOKENS`): then `/api/` paths need
        `Authorization: Bearer <token>` with one of them, and `/health` paths too when
        `api.protect_health` is true. Without tokens no header is needed.
  parameters:
    WorkflowName:
      name: name
      in: path
      required: true
      description: The workflow's name.
      schema:
        type: string
      example: nightly-etl
    RunIDPath:
      name: id
      in: path
      required: true
      description: |
        The run id (26 characters of Crockford base32, upper case). A string that is not
        shaped like a run id answers 404, like an unknown id.
      schema:
        type: string
      example: 01J0ABCDEF0123456789ABCDEF
  responses:
    Unauthorized:
      description: |
        Only when tokens are configured: the `Authorization` header is missing, is not
        `Bearer <token>`, or the token is not one of the configured ones.
      headers:
        WWW-Authenticate:
          description: Always `Bearer realm="deerflow"`.
          schema:
            type: string
          example: Bearer realm="deerflow"
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
          example:
            error:
              code: unauthorized
              message: "this API needs a bearer token: send 'Authorization: Bearer <token>' (tokens come from api.tokens or DEERFLOW_API_TOKENS)"
    NotFound:
      description: Nothing of that name.
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
          example:
            error:
              code: not_found
              message: workflow 'nightly' not found
    RunNotFound:
      description: No run with that id (or the id is not shaped like a run id).
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
          example:
            error:
              code: not_found
              message: run 01J0ABCDEF0123456789ABCDEF not found
    PayloadTooLarge:
      description: The request body is larger than the server's limit (1 MiB by default).
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
          example:
            error:
              code: payload_too_large
              message: request body is larger than the limit (1 MiB by default)
    InternalError:
      description: An unexpected failure (for example a store error that is not classified).
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
          example:
            error:
              code: internal
              message: 'internal error: disk I/O error'
    Unavailable:
      description: The store or another dependency failed.
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
          example:
            error:
              code: unavailable
              message: the SQLite store is not open; call prepare() first
  schemas:
    Error:
      description: Every error of the `/api/` routes.
      type: object
      required: [error]
      additionalProperties: false
      properties:
        error:
          type: object
          required: [code, message]
          additionalProperties: false
          properties:
            code:
              type: string
              description: |
                Stable machine-readable code: `bad_request`, `unauthorized`, `not_found`,
                `conflict`, `payload_too_large`, `invalid_params`, `unavailable`, `internal`.
              example: not_found
            message:
              type: string
              description: What went wrong and what to do.
              example: run 01J0ABCDEF0123456789ABCDEF not found
    RunID:
      description: A run id, a ULID (26 characters of Crockford base32); ids sort by creation time.
      type: string
      pattern: '^[0-9A-HJKMNP-TV-Z]{26}$'
      example: 01J0ABCDEF0123456789ABCDEF
    Timestamp:
      description: RFC 3339 time in UTC with milliseconds.
      type: string
      format: date-time
      example: '2024-06-01T12:00:00.123Z'
    NullableTimestamp:
      description: RFC 3339 time in UTC with milliseconds, or null when it has not happened.
      type: [string, 'null']
      format: date-time
      example: '2024-06-01T12:00:00.123Z'
    RunStatus:
      description: "`pending` → `running` → `success` | `failed` | `cancelled`."
      type: string
      enum: [pending, running, success, failed, cancelled]
    TaskStatus:
      description: |
        `pending` (waiting for dependencies) → `queued` (ready, or waiting for a retry's
        backoff) → `running` → `success`, back to `queued` for a retry, or `failed` / `timeout`.
        Dependents of a task that failed for good become `upstream_failed`; cancelling the run
        makes unfinished tasks `cancelled`.
      type: string
      enum: [pending, queued, running, success, failed, timeout, cancelled, upstream_failed]
    AttemptStatus:
      description: "`queued` → `running` → `success` | `failed` | `timeout` | `cancelled`."
      type: string
      enum: [queued, running, success, failed, timeout, cancelled]
    HealthStatus:
      type: string
      enum: [healthy, degraded, unhealthy]
    WorkflowVersion:
      description: "`name@` and 8 hex digits of a hash of the definition."
      type: string
      pattern: '^.+@[0-9a-f]{8}$'
      example: nightly-etl@3f9a01bc
    Progress:
      description: Task counts of a run.
      type: object
      required: [total, finished, failed]
      additionalProperties: false
      properties:
        total:
          type: integer
          minimum: 0
        finished:
          description: |
            Tasks that finished by running or being skipped: success, failed, timeout,
            upstream_failed. Tasks cancelled with their run are not counted, so a cancelled run
            usually stays below `total`.
          type: integer
          minimum: 0
        failed:
          description: Tasks that failed, timed out or were skipped because a dependency failed (upstream_failed).
          type: integer
          minimum: 0
    RunParams:
      description: The run's parameters after defaults were filled in; secret ones are `[REDACTED]`.
      type: object
      additionalProperties: true
    Run:
      description: A run without its tasks.
      type: object
      required: [id, workflow, workflow_version, status, params, trigger, scheduled_for, created_at, started_at, finished_at, progress]
      additionalProperties: false
      properties:
        id:
          $ref: '#/components/schemas/RunID'
        workflow:
          type: string
        workflow_version:
          $ref: '#/components/schemas/WorkflowVersion'
        status:
          $ref: '#/components/schemas/RunStatus'
        params:
          $ref: '#/components/schemas/RunParams'
        trigger:
          description: How the run was started.
          type: string
          enum: [api, schedule, library]
        scheduled_for:
          description: The cron due time, for runs the scheduler started; null otherwise.
          $ref: '#/components/schemas/NullableTimestamp'
        created_at:
          $ref: '#/components/schemas/Timestamp'
        started_at:
          $ref: '#/components/schemas/NullableTimestamp'
        finished_at:
          $ref: '#/components/schemas/NullableTimestamp'
        progress:
          $ref: '#/components/schemas/Progress'
    RunDetail:
      description: A run with its tasks (in declaration order) and their attempts.
      type: object
      required: [id, workflow, workflow_version, status, params, trigger, scheduled_for, created_at, started_at, finished_at, progress, tasks]
      additionalProperties: false
      properties:
        id:
          $ref: '#/components/schemas/RunID'
        workflow:
          type: string
        workflow_version:
          $ref: '#/components/schemas/WorkflowVersion'
        status:
          $ref: '#/components/schemas/RunStatus'
        params:
          $ref: '#/components/schemas/RunParams'
        trigger:
          type: string
          enum: [api, schedule, library]
        scheduled_for:
          $ref: '#/components/schemas/NullableTimestamp'
        created_at:
          $ref: '#/components/schemas/Timestamp'
        started_at:
          $ref: '#/components/schemas/NullableTimestamp'
        finished_at:
          $ref: '#/components/schemas/NullableTimestamp'
        progress:
          $ref: '#/components/schemas/Progress'
        tasks:
          type: array
          items:
            $ref: '#/components/schemas/Task'
    Task:
      description: A task of a run.
      type: object
      required: [id, type, queue, status, output, attempts]
      additionalProperties: false
      properties:
        id:
          type: string
        type:
          description: "`shell`, `http`, `noop`, `sleep`, or a Swift task's type name."
          type: string
        queue:
          type: string
        status:
          $ref: '#/components/schemas/TaskStatus'
        output:
          description: What the task returned (any JSON value) once it succeeded; null before.
        attempts:
          type: array
          items:
            $ref: '#/components/schemas/Attempt'
    Attempt:
      description: One execution of a task.
      type: object
      required: [number, status, queued_at, started_at, finished_at, worker, error]
      additionalProperties: false
      properties:
        number:
          description: 1 for the first attempt.
          type: integer
          minimum: 1
        status:
          $ref: '#/components/schemas/AttemptStatus'
        queued_at:
          description: When the attempt became (or, for a retry in backoff, becomes) claimable.
          $ref: '#/components/schemas/Timestamp'
        started_at:
          $ref: '#/components/schemas/NullableTimestamp'
        finished_at:
          $ref: '#/components/schemas/NullableTimestamp'
        worker:
          description: Id of the worker that claimed the attempt.
          type: [string, 'null']
        error:
          description: Why the attempt failed, timed out or was cancelled.
          type: [string, 'null']
    RunList:
      type: object
      required: [runs, next_cursor]
      additionalProperties: false
      properties:
        runs:
          type: array
          items:
            $ref: '#/components/schemas/Run'
        next_cursor:
          description: Pass as `cursor` for the next page; null on the last page.
          type: [string, 'null']
          pattern: '^[0-9A-HJKMNP-TV-Z]{26}$'
    TriggerRequest:
      type: object
      additionalProperties: false
      properties:
        params:
          description: Parameter names to values; missing ones take their declared defaults.
          type: object
          additionalProperties: true
    Schedule:
      description: A workflow's cron schedule.
      type: object
      required: [cron, timezone, catchup, next_fire_at]
      additionalProperties: false
      properties:
        cron:
          description: 5-field cron expression or a macro such as `@daily`.
          type: string
        timezone:
          description: IANA time zone the expression is read in.
          type: string
        catchup:
          description: "`latest` fires the most recent missed time once; `all` fires every missed time."
          type: string
          enum: [latest, all]
        next_fire_at:
          description: The next due time; null until the scheduler has stored one.
          $ref: '#/components/schemas/NullableTimestamp'
    WorkflowParam:
      description: A declared run parameter.
      type: object
      required: [name, type, required, default, secret, description]
      additionalProperties: false
      properties:
        name:
          type: string
        type:
          type: string
          enum: [string, int, float, bool, json]
        required:
          description: True exactly when there is no default.
          type: boolean
        default:
          description: |
            The default value (any JSON value); null when there is none. `[REDACTED]` for a
            secret parameter with a default, whatever its type.
        secret:
          type: boolean
        description:
          type: string
    WorkflowTask:
      description: A task of a workflow definition.
      type: object
      required: [id, type, depends_on, queue, priority, retries, timeout]
      additionalProperties: false
      properties:
        id:
          type: string
        type:
          type: string
        depends_on:
          type: array
          items:
            type: string
        queue:
          type: string
        priority:
          description: Higher runs first among ready tasks of a queue.
          type: integer
        retries:
          description: Retries after the first attempt.
          type: integer
          minimum: 0
        timeout:
          description: Timeout of one attempt (`500ms`, `30s`, `10m`, `2h`, `1d`); null for none.
          type: [string, 'null']
          pattern: '^[0-9]+(ms|s|m|h|d)$'
    Workflow:
      type: object
      required: [name, description, version, schedule, params, tasks]
      additionalProperties: false
      properties:
        name:
          type: string
        description:
          type: string
        version:
          $ref: '#/components/schemas/WorkflowVersion'
        schedule:
          description: The cron schedule; null for workflows that only run when triggered.
          oneOf:
            - type: 'null'
            - $ref: '#/components/schemas/Schedule'
        params:
          type: array
          items:
            $ref: '#/components/schemas/WorkflowParam'
        tasks:
          type: array
          items:
            $ref: '#/components/schemas/WorkflowTask'
    WorkflowList:
      type: object
      required: [workflows]
      additionalProperties: false
      properties:
        workflows:
          type: array
          items:
            $ref: '#/components/schemas/Workflow'
    TaskLogAttempt:
      type: object
      required: [attempt, status, log, truncated]
      additionalProperties: false
      properties:
        attempt:
          type: integer
          minimum: 1
        status:
          $ref: '#/components/schemas/AttemptStatus'
        log:
          description: The captured output (ends with a truncation note when `truncated`).
          type: string
        truncated:
          description: Whether bytes past the engine's log limit were dropped.
          type: boolean
    TaskLogList:
      type: object
      required: [attempts]
      additionalProperties: false
      properties:
        attempts:
          type: array
          items:
            $ref: '#/components/schemas/TaskLogAttempt'
    Worker:
      type: object
      required: [id, host, pid, slots, busy, queues, version, started_at, last_seen, state]
      additionalProperties: false
      properties:
        id:
          type: string
        host:
          type: string
        pid:
          type: integer
        slots:
          description: Attempts the worker runs at once.
          type: integer
          minimum: 0
        busy:
          description: Slots running an attempt now.
          type: integer
          minimum: 0
        queues:
          type: array
          items:
            type: string
        version:
          description: DeerFlow version of the worker.
          type: string
        started_at:
          $ref: '#/components/schemas/Timestamp'
        last_seen:
          description: Time of the last heartbeat.
          $ref: '#/components/schemas/Timestamp'
        state:
          description: "`active`, `stopped` (deregistered cleanly) or `lost` (heartbeat timed out)."
          type: string
          enum: [active, stopped, lost]
    AlertList:
      type: object
      required: [evaluating, alerts]
      additionalProperties: false
      properties:
        evaluating:
          type: boolean
          description: Whether this process evaluates the rules (the scheduler leader does).
        reason:
          type: string
          description: Why nothing is evaluated, when in-process alerting is off.
        rules_source:
          type: string
        rules:
          type: array
          items: {type: string}
        interval_seconds:
          type: number
        last_evaluation:
          $ref: '#/components/schemas/NullableTimestamp'
        history:
          type: object
          required: [series, samples, retention_seconds]
          additionalProperties: false
          properties:
            series: {type: integer}
            samples: {type: integer}
            retention_seconds: {type: number}
        errors:
          type: array
          items: {type: string}
        alerts:
          type: array
          items:
            $ref: '#/components/schemas/Alert'
    Alert:
      type: object
      required: [name, state, labels, annotations, active_at, fired_at, value]
      additionalProperties: false
      properties:
        name: {type: string}
        state:
          type: string
          enum: [pending, firing]
        labels:
          type: object
          additionalProperties: {type: string}
        annotations:
          type: object
          additionalProperties: {type: string}
        active_at:
          $ref: '#/components/schemas/Timestamp'
        fired_at:
          $ref: '#/components/schemas/NullableTimestamp'
        value:
          type: [number, 'null']
    AlertmanagerWebhook:
      description: Alertmanager's webhook payload, version 4 (fields DeerFlow does not use are accepted).
      type: object
      required: [alerts]
      properties:
        version: {type: string}
        status:
          type: string
          enum: [firing, resolved]
        alerts:
          type: array
          items:
            type: object
            required: [status, labels, startsAt]
            properties:
              status:
                type: string
                enum: [firing, resolved]
              labels:
                type: object
                additionalProperties: {type: string}
              annotations:
                type: object
                additionalProperties: {type: string}
              startsAt: {type: string}
              endsAt: {type: string}
              fingerprint: {type: string}
    Queued:
      type: object
      required: [queued]
      additionalProperties: false
      properties:
        queued:
          type: integer
          minimum: 0
    WorkerList:
      type: object
      required: [workers]
      additionalProperties: false
      properties:
        workers:
          type: array
          items:
            $ref: '#/components/schemas/Worker'
    HealthCheck:
      description: |
        One check: its status plus details. `latency_ms` is added unless the check failed,
        timed out or set it; `error` is set when it failed or timed out. Built-in details:
        `queue` has `queue_depth`, `oldest_age_seconds`, `threshold_depth` and
        `queues_without_workers` (queues with ready tasks that no live worker serves; any makes it
        degraded); `scheduler` has `lag_seconds`, `threshold_seconds`. Custom checks may add any key.
      type: object
      required: [status]
      additionalProperties: true
      properties:
        status:
          $ref: '#/components/schemas/HealthStatus'
        latency_ms:
          type: number
        error:
          type: string
        queue_depth:
          type: integer
        oldest_age_seconds:
          type: number
        threshold_depth:
          type: integer
        queues_without_workers:
          type: array
          items:
            type: string
        lag_seconds:
          type: number
        threshold_seconds:
          type: number
    HealthReport:
      type: object
      required: [status, checks]
      additionalProperties: false
      properties:
        status:
          description: The worst status of all checks (`healthy` with no checks).
          $ref: '#/components/schemas/HealthStatus'
        checks:
          description: Check name to result.
          type: object
          additionalProperties:
            $ref: '#/components/schemas/HealthCheck'
    Liveness:
      type: object
      required: [status]
      additionalProperties: false
      properties:
        status:
          type: string
          enum: [alive]
    Ready:
      type: object
      required: [status]
      additionalProperties: false
      properties:
        status:
          type: string
          enum: [ready]
    NotReady:
      oneOf:
        - description: A worker of this process is draining (shutting down).
          type: object
          required: [status, reason]
          additionalProperties: false
          properties:
            status:
              type: string
              enum: [draining]
            reason:
              type: string
        - description: The `database` check is unhealthy; its details (such as `error`) are merged in.
          type: object
          required: [status, reason]
          additionalProperties: true
          properties:
            status:
              type: string
              enum: [not_ready]
            reason:
              type: string
            error:
              type: string
            latency_ms:
              type: number

"""##
}
