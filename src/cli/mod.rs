//! L5 — command-line tools (placeholder).
