"""Developer tooling beside the runtime package `lakehouse`, never shipped to executors:
the local service stack (`services/`), the sample generators (`samples`) and the
benchmarks (`bench*`). It imports `lakehouse`; `lakehouse` imports it only on demand
(`lakehouse samples`, `lakehouse bench`, `produce --synthetic`)."""
