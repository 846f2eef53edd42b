"""NocoDB, the source system: REST client, source, Dagster resource, change sensor, reconciliation
checks and the set-up of demo tables, one module each."""
