//! A recording [`Net`]: every call is kept, in order, for the tests to compare.

use super::{netlink::describe, Net, RouteSpec, SysError};
use crate::config::Ipv4Prefix;

#[derive(Debug, Default)]
pub struct FakeNet {
    pub calls: Vec<String>,
}

impl Net for FakeNet {
    fn link_up(&mut self, index: u32) -> Result<(), SysError> {
        self.calls.push(format!("up {index}"));
        Ok(())
    }
    fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), SysError> {
        self.calls.push(format!("mtu {index} {mtu}"));
        Ok(())
    }
    fn add_address(&mut self, index: u32, address: Ipv4Prefix) -> Result<(), SysError> {
        self.calls.push(format!("add-addr {index} {address}"));
        Ok(())
    }
    fn del_address(&mut self, index: u32, address: Ipv4Prefix) -> Result<(), SysError> {
        self.calls.push(format!("del-addr {index} {address}"));
        Ok(())
    }
    fn add_route(&mut self, index: u32, route: &RouteSpec) -> Result<(), SysError> {
        self.calls
            .push(format!("add-route {index} {}", describe(route)));
        Ok(())
    }
    fn del_route(&mut self, index: u32, route: &RouteSpec) -> Result<(), SysError> {
        self.calls
            .push(format!("del-route {index} {}", describe(route)));
        Ok(())
    }
}
