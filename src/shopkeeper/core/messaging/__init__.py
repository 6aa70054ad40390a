"""Events, the outbox relay, the job broker and periodic jobs: how work that follows a change
leaves the request.

The modules form a chain with no cycle (each imports only those above it, plus `core.db`,
`core.settings`, `core.writes` and `core.observability`):

    codec       dataclass <-> JSON payload
    events      outbox tables, `record_event`, `queue_events`
    handlers    `@handles` registry, handler discovery
    broker      taskiq broker (in-process or RabbitMQ), retries, dead letters
    host        the Protocols a runtime satisfies to run the pieces below
    periodic    `@periodic` jobs, leases, the scheduler loop
    dispatch    run one handler for one stored event, once
    relay       committed events -> broker jobs; redelivery, pruning, `drain`

Nothing here imports `core.runtime`: the runtime builds these pieces and passes itself (it
satisfies `host`'s Protocols) to the functions that need a database, settings or the broker.
This file imports nothing, so importing one module does not import the others.
"""
