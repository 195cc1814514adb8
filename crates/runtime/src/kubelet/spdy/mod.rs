//! SPDY/3.1, the framing `kubectl port-forward` speaks (over a WebSocket since
//! Kubernetes 1.31, over an HTTP upgrade before): frames and header blocks. Only what
//! a server of the port-forward protocol needs.

pub mod dictionary;
pub mod frame;
pub mod header_block;
