//! Images for the CRI image service: pulled from OCI/Docker registries, stored
//! content-addressed, unpacked into layer folders overlayfs stacks for containers.
//!
//! Parts, each in its own module: [`reference`] parses and normalizes image names;
//! [`hosts`] reads containerd-style `certs.d/<registry>/hosts.toml` (mirrors, plain HTTP,
//! custom CAs, and credentials — a Berth extension documented there); [`client`] speaks
//! the distribution API with basic and bearer-token auth; [`content`] verifies every blob
//! against its digest before it gets a name; [`unpack`] turns a layer tar into a lowerdir
//! without letting it write outside; [`layers`] and [`records`] keep unpacked layers and
//! image records crash-safe; [`store`] ties them into [`ImageStore`].
//!
//! On disk, under the daemon's root: `content/blobs/sha256/<hex>` and `content/ingest/`,
//! `layers/sha256/<diff id hex>/` and `layers/tmp/`, `images/<image id hex>.json`.

pub mod auth;
pub mod client;
pub mod content;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod hosts;
pub mod layers;
pub mod manifest;
pub mod records;
pub mod reference;
pub mod store;
pub mod sys;
pub mod unpack;
pub mod usage;

pub use auth::Auth;
pub use digest::Digest;
pub use error::ImageError;
pub use hosts::RegistryConfig;
pub use manifest::ImageConfigSummary;
pub use records::ImageRecord;
pub use reference::Reference;
pub use store::ImageStore;
pub use unpack::UnpackOptions;
pub use usage::FsUsage;
