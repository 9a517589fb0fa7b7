//! What the cloud says before there is a network: cloud-init's NoCloud seed in the SMBIOS
//! system serial number.
//!
//! A VM started with `-smbios type=1,serial=ds=nocloud;h=node-1` (QEMU; libvirt's
//! `<sysinfo>`, Proxmox's SMBIOS settings) shows that serial in
//! `/sys/class/dmi/id/product_serial`. As cloud-init's NoCloud data source reads it: a
//! whitespace-separated word `ds=nocloud` or `ds=nocloud-net`, optionally followed by
//! `;`-separated `key=value` fields, where `h` stands for `local-hostname`, `i` for
//! `instance-id` and `s` for `seedfrom`. Berth takes the host name from it (also spelled
//! `hostname=`); a serial without such a word is a serial, not a seed, and says nothing.

use std::collections::BTreeMap;

/// Where the kernel shows the SMBIOS system serial number (readable by root only).
pub const SMBIOS_SERIAL: &str = "/sys/class/dmi/id/product_serial";

/// The fields of a NoCloud seed in `text`, by their long names; `None` when `text` holds
/// no `ds=nocloud` word. A field without `=` has the value "".
pub fn nocloud_fields(text: &str) -> Option<BTreeMap<String, String>> {
    let word = text.split_whitespace().rfind(|w| {
        let ds = w.split(';').next().unwrap_or_default();
        ds == "ds=nocloud" || ds == "ds=nocloud-net"
    })?;
    let mut fields = BTreeMap::new();
    for field in word.split(';').skip(1).filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        let key = match key {
            "h" => "local-hostname",
            "i" => "instance-id",
            "s" => "seedfrom",
            other => other,
        };
        fields.insert(key.to_owned(), value.to_owned());
    }
    Some(fields)
}

/// The host name a NoCloud seed in `text` asks for, unchecked: `local-hostname` (`h`),
/// else `hostname`.
pub fn nocloud_hostname(text: &str) -> Option<String> {
    let mut fields = nocloud_fields(text)?;
    fields
        .remove("local-hostname")
        .or_else(|| fields.remove("hostname"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nocloud_seeds_in_the_smbios_serial() {
        let name = |t: &str| nocloud_hostname(t);
        assert_eq!(name("ds=nocloud;h=node-1\n").as_deref(), Some("node-1"));
        assert_eq!(
            name("ds=nocloud;s=http://10.0.2.2:8000/;h=node-2;i=iid-1").as_deref(),
            Some("node-2")
        );
        assert_eq!(
            name("ds=nocloud-net;local-hostname=node-3").as_deref(),
            Some("node-3")
        );
        assert_eq!(
            name("ds=nocloud;hostname=node-4").as_deref(),
            Some("node-4")
        );
        assert_eq!(
            name("ds=nocloud;hostname=b;local-hostname=a").as_deref(),
            Some("a")
        );
        assert_eq!(name("other ds=nocloud;;h=x;").as_deref(), Some("x"));
        assert_eq!(
            name("ds=nocloud;h=").as_deref(),
            Some(""),
            "garbage is the caller's"
        );
        assert_eq!(name("ds=nocloud;i=iid-1"), None);
        assert_eq!(name("ds=nocloud"), None);
        assert_eq!(name("GoogleCloud-1234ABCD"), None);
        assert_eq!(name("ds=nocloudy;h=x"), None);
        assert_eq!(name(""), None);
        let fields = nocloud_fields("ds=nocloud;i=iid-1;s=file:///seed/;flag").unwrap();
        assert_eq!(fields["instance-id"], "iid-1");
        assert_eq!(fields["seedfrom"], "file:///seed/");
        assert_eq!(fields["flag"], "");
    }
}
