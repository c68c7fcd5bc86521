//! Per-runtime modules (JVM, Python, Node.js): filled in by the runtime issues.
