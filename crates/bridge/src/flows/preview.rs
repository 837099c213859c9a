//! What a pass of each flow would do, computed without changing anything (`sync --dry-run`).
