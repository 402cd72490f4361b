/// The workflow of the retry-survives-kill tests (SQLite and PostgreSQL): `gate` fails until the
/// file `fixed` exists, then waits for the file `go`, so a test can retry it and kill the server
/// while the retried attempt runs.
public enum RetryScenario {
    public static func flakyWorkflow(fixed: String, go: String) -> String {
        """
        name: flaky
        params:
          who: {type: string, default: first}
          token: {type: string, secret: true, default: s3cret-value}
        tasks:
          - id: extract
            type: shell
            script: echo extracted
          - id: gate
            type: shell
            depends_on: [extract]
            script: 'if [ ! -f "\(fixed)" ]; then echo "not fixed yet" >&2; exit 3; fi; while [ ! -f "\(go)" ]; do sleep 0.1; done; echo "gate for $DEERFLOW_PARAM_WHO"'
          - id: load
            type: shell
            depends_on: [gate]
            script: echo loaded
        """
    }
}
