//! Berth's CRI runtime: the kubelet and crictl talk to it like to containerd's CRI plugin.
//!
//! The daemon (`berth-runtime`) serves `runtime.v1.RuntimeService` and
//! `runtime.v1.ImageService` on a unix socket. Work is split by what it touches:
//! [`image`] pulls from registries into a content-addressed store and unpacks layers,
//! [`pod`] holds a pod's namespaces and wires its network through CNI, [`container`]
//! writes OCI runtime specs and drives crun through a per-container monitor, [`store`]
//! keeps the metadata crash-safe, [`service`] runs the pod and container lifecycle on
//! validated requests through one host boundary (faked in its tests), and [`server`] is
//! the thin gRPC layer that maps CRI requests onto them.

pub mod atomic_file;
pub mod client;
pub mod config;
pub mod container;
pub mod error;
pub mod fork;
pub mod monitor;
pub mod monitor_protocol;
pub mod oci_image;
pub mod pod;
pub mod proto;
pub mod server;
pub mod service;
pub mod sockpath;
pub mod store;
pub mod stream;
