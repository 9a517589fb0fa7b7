//! The live [`Source`]: PID 1's control socket, as `systemctl` reaches it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_init::control::client::call;
use berth_init::control::{Reply, Request};

use crate::Source;

/// PID 1's control socket.
pub struct ControlSocket(pub PathBuf);

impl ControlSocket {
    fn ask(&self, verb: &str, args: &[String]) -> Result<Vec<String>, String> {
        match call(&self.0, &Request::new(verb, args)) {
            Ok(Reply::Ok(body)) => Ok(body),
            Ok(Reply::Error { message, .. }) => Err(message),
            Err(e) => Err(format!("Failed to connect to the service manager: {e}")),
        }
    }
}

impl Source for ControlSocket {
    fn show(&self, unit: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        let args: Vec<String> = unit.into_iter().map(str::to_owned).collect();
        Ok(self
            .ask("show", &args)?
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    fn units(&self) -> Result<Vec<String>, String> {
        Ok(self
            .ask("list-units", &[])?
            .iter()
            .filter_map(|row| row.split('\t').next().map(str::to_owned))
            .collect())
    }

    fn loader_variable(&self, name: &str) -> Option<Vec<u8>> {
        crate::efi::read_loader_variable(std::path::Path::new(crate::efi::EFIVARS), name)
            .ok()
            .flatten()
    }

    fn after(&self, unit: &str) -> Result<Vec<String>, String> {
        Ok(self
            .ask("list-dependencies", &["after".into(), unit.into()])?
            .iter()
            .filter_map(|row| row.split('\t').next().map(str::to_owned))
            .collect())
    }
}
