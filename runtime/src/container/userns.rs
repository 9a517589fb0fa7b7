//! A pod's user namespace (`namespace_options.userns_options` POD): its one uid and one
//! gid mapping, container ID 0 mapped to an unprivileged host id (checked where the CRI
//! options are read, `service::records::pod_config`), in their OCI form.

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

use super::ContainerError;

/// The request field, from the pod config.
pub const FIELD: &str = "config.linux.security_context.namespace_options.userns_options";

/// The uid and gid mappings of a pod with its own user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodIdMappings {
    pub uid: Mapping,
    pub gid: Mapping,
}

/// One `container_id host_id length` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub container_id: u32,
    pub host_id: u32,
    pub length: u32,
}

impl Mapping {
    /// The OCI form.
    pub fn to_oci(self) -> Result<LinuxIdMapping, ContainerError> {
        LinuxIdMappingBuilder::default()
            .container_id(self.container_id)
            .host_id(self.host_id)
            .size(self.length)
            .build()
            .map_err(|e| ContainerError::invalid(FIELD, e.to_string()))
    }
}
