//! A recording [`Net`]: every call is kept, in order, for the tests to compare.

use std::net::Ipv6Addr;

use super::{netlink::describe, LinkEvent, LinkWatch, Net, RouteSpec, SysError};
use crate::config::Ipv4Prefix;
use crate::online::Ipv6Status;

#[derive(Debug, Default)]
pub struct FakeNet {
    pub calls: Vec<String>,
    /// What [`Net::ipv6_status`] answers.
    pub ipv6: Ipv6Status,
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
    fn add_address6(&mut self, index: u32, address: Ipv6Addr, len: u8) -> Result<(), SysError> {
        self.calls.push(format!("add-addr {index} {address}/{len}"));
        Ok(())
    }
    fn del_address6(&mut self, index: u32, address: Ipv6Addr, len: u8) -> Result<(), SysError> {
        self.calls.push(format!("del-addr {index} {address}/{len}"));
        Ok(())
    }
    fn set_ipv6_sysctl(&mut self, link: &str, key: &str, value: &str) -> Result<(), SysError> {
        self.calls
            .push(format!("sysctl net.ipv6.conf.{link}.{key}={value}"));
        Ok(())
    }
    fn ipv6_status(&mut self, index: u32) -> Result<Ipv6Status, SysError> {
        self.calls.push(format!("ipv6-status {index}"));
        Ok(self.ipv6)
    }
}

/// A [`LinkWatch`] that hands out the batches it was given, one per call, in order.
#[derive(Debug, Default)]
pub struct FakeWatch {
    pub batches: std::collections::VecDeque<Vec<LinkEvent>>,
}

impl FakeWatch {
    pub fn with(batch: Vec<LinkEvent>) -> FakeWatch {
        FakeWatch {
            batches: [batch].into(),
        }
    }
}

impl LinkWatch for FakeWatch {
    fn events(&mut self) -> Result<Vec<LinkEvent>, SysError> {
        Ok(self.batches.pop_front().unwrap_or_default())
    }
}
