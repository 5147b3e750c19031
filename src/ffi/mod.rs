//! The C ABI (placeholder while the client is being built).
