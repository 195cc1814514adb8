//! weft's cluster DNS: the Kubernetes DNS-Based Service Discovery specification (1.1.0)
//! for the cluster domain, forwarding with a cache for everything else.
//!
//! - [`zone`]: the model (hash maps keyed by name and address), fed one watch event at
//!   a time by [`watch`] from [`objects`]; [`answer`]: question → answer, pure.
//! - [`wire`]: bytes ↔ messages (hickory-proto), size limits and truncation.
//! - [`resolve`]: zone, [`cache`] and [`forward`]ing glued into a response.
//! - [`udp`] (a socket per core, SO_REUSEPORT, a thread each), [`tcp`], [`http`]
//!   (metrics, health, readiness), started by [`server`] inside a network namespace.
//! - [`config`]: defaults and the `kube-system/weft-dns` ConfigMap; [`publish`]: the
//!   `kube-dns` Service's endpoints.

pub mod answer;
pub mod cache;
pub mod config;
pub mod fixture;
pub mod forward;
pub mod hot;
pub mod http;
pub mod metrics;
pub mod names;
pub mod objects;
pub mod publish;
pub mod resolve;
pub mod server;
pub mod tcp;
pub mod udp;
pub mod watch;
pub mod wire;
pub mod zone;

pub use config::{Config, PodRecords};
pub use resolve::Dns;
pub use server::{Listen, Running, ServerSpec};
